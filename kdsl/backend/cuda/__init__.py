"""The GPU path: layouts, lowering to LLVM NVPTX, PTX, and the device interface shared by `cuda` and `sim`."""
