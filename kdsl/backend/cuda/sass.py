"""SASS, the machine code ptxas makes, read back from a cubin with nvdisasm where it is installed
(on the PATH, or from the `nvidia-cuda-nvdisasm` wheel); a check and benchmark tool, not needed to
compile or run."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sysconfig
import tempfile

# One instruction of nvdisasm's listing: its address, opcode (modifiers dropped) and operands.
INSTRUCTION = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*)(?:\.[\w.]+)?\s*([^;]*);")


def find_nvdisasm() -> str | None:
    """nvdisasm on the PATH, else the one the nvidia-cuda-nvdisasm wheel installs, else None."""
    found = shutil.which("nvdisasm")
    wheel = os.path.join(sysconfig.get_paths()["purelib"], "nvidia", "cu13", "bin", "nvdisasm")
    return found or (wheel if os.path.exists(wheel) else None)


def disassemble(cubin: bytes, tool: str | None = None) -> str:
    """The SASS text of `cubin` (`nvdisasm -c`: code sections only), with `tool` or `find_nvdisasm()`'s."""
    tool = tool or find_nvdisasm()
    if tool is None:
        raise FileNotFoundError("nvdisasm is not installed (pip install nvidia-cuda-nvdisasm)")
    with tempfile.TemporaryDirectory(prefix="kdsl-sass-") as tmp:
        path = os.path.join(tmp, "kernel.cubin")
        with open(path, "wb") as f:
            f.write(cubin)
        return subprocess.run([tool, "-c", path], capture_output=True, text=True, check=True).stdout


def opcodes(sass: str) -> list[str]:
    """The opcodes of the instructions in `sass` (`disassemble`'s text), in order."""
    return [match.group(2) for match in INSTRUCTION.finditer(sass)]
