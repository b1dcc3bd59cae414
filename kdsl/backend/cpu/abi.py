"""What the CPU's generated code and the Python that runs it agree on, importable without LLVM
(a process that finds its kernels in the disk cache never imports LLVM's IR builder): the
launcher's name and signature (`launcher`), the launch status (`lower_debug`) and the thread
pool's state and entry points (`pool_code`)."""
from __future__ import annotations

import ctypes
import platform
from functools import lru_cache

LAUNCH_NAME = "launch"
LAUNCH_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                               ctypes.c_int32, ctypes.c_int32, ctypes.c_int32, ctypes.c_void_p)
STATUS_SLOTS = 6

POOL_SLOTS = ("generation", "launch", "argv", "total", "chunk", "next", "gx", "gy", "gz", "status",
              "active", "stop", "wanted", "workers")
POOL_SLOT = {name: index for index, name in enumerate(POOL_SLOTS)}
POOL_RUN, POOL_WORKER, POOL_STOP = "kdsl_pool_run", "kdsl_pool_worker", "kdsl_pool_stop"
FUTEX_SYSCALL = {"x86_64": 202, "aarch64": 98}


@lru_cache(maxsize=None)
def pool_supported() -> bool:
    """Whether this host has the futexes the pool waits on."""
    return platform.system() == "Linux" and platform.machine() in FUTEX_SYSCALL
