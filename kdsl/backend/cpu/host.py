"""The host's identity in the disk cache's keys (`jit.host_identity`: triple, CPU, its features,
LLVM's version), remembered in the cache under a probe of the CPU that needs no LLVM: the
model and feature flags the kernel reports in /proc/cpuinfo, the machine and llvmlite's version.
A process whose probe the cache has seen before finds its kernels without importing LLVM; where
there is no /proc/cpuinfo or no cache, LLVM is asked."""
from __future__ import annotations

import hashlib
import platform
from functools import lru_cache

import llvmlite

from kdsl import cache

_PROBED = ("model name", "flags", "cpu family", "model\t", "stepping")


def _probe() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            lines = sorted({line.strip() for line in f if line.startswith(_PROBED)})
    except OSError:
        return None
    if not lines:
        return None
    seen = "\n".join([platform.machine(), llvmlite.__version__, *lines])
    return hashlib.sha256(seen.encode()).hexdigest()


@lru_cache(maxsize=None)
def host_identity() -> str:
    probe = _probe()
    entry = cache.key("host identity", probe) if probe is not None else None
    known = cache.load(entry) if entry is not None else None
    if isinstance(known, str):
        return known
    from kdsl.backend.cpu.jit import host_identity as ask_llvm

    identity = ask_llvm()
    if entry is not None:
        cache.store(entry, identity)
    return identity
