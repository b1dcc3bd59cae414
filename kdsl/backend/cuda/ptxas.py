"""ptxas, where it is installed: PTX → cubin, with its resource report (`-v`)."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

from kdsl.errors import KdslError


class PtxasError(KdslError):
    """ptxas rejected PTX that kdsl generated: a compiler bug, reported with ptxas's own words."""


@dataclass(frozen=True)
class Assembled:
    cubin: bytes
    report: str  # ptxas -v: registers, spills, shared memory


def available() -> bool:
    return shutil.which("ptxas") is not None


def assemble(ptx: str, arch: str, exe: str | None = None) -> Assembled:
    """Assemble `ptx` for `arch` ("sm_80", ...) with `ptxas -v` (`exe`, by default the one on the PATH)."""
    exe = exe or shutil.which("ptxas")
    if exe is None:
        raise KdslError("ptxas is not on the PATH")
    with tempfile.TemporaryDirectory(prefix="kdsl-ptxas-") as tmp:
        src, out = os.path.join(tmp, "kernel.ptx"), os.path.join(tmp, "kernel.cubin")
        with open(src, "w") as f:
            f.write(ptx)
        done = subprocess.run([exe, "-v", f"-arch={arch}", src, "-o", out], capture_output=True, text=True)
        if done.returncode != 0:
            raise PtxasError(f"ptxas -arch={arch} rejected the PTX:\n{done.stderr.strip()}")
        with open(out, "rb") as f:
            return Assembled(f.read(), done.stderr + done.stdout)
