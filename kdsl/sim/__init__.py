"""kdsl.sim: a PTX simulator that runs PTX text on the CPU, vectorised over threads with numpy.

`launch_ptx(ptx, entry, grid, block, args)` runs a kernel once; `load_module`
parses once for many launches; `DeviceMemory` keeps buffers across launches.
"""
from kdsl.sim.errors import PtxParseError, UnsupportedInstruction
from kdsl.sim.memory import DeviceMemory
from kdsl.sim.module import Module, launch_ptx, load_module

__all__ = ["DeviceMemory", "Module", "PtxParseError", "UnsupportedInstruction", "launch_ptx", "load_module"]
