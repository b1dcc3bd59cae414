"""What compiled kernels call back into Python for: `kl.device_print`'s output.

A `print` op becomes a call of the C symbol `kdsl_device_print(site, x, y, z,
operands)`: `site` is a NUL-terminated JSON description of the op (prefix, hex,
operand types) in the kernel's constant data, `operands` an array of pointers
to each operand's elements in memory form. The symbol is a ctypes callback
resolved by the loader (`elf_loader`, or LLVM's JIT linker), so the lines go
through Python's `sys.stdout`, in program order, from any thread (the callback
takes the GIL).
"""
from __future__ import annotations

import ctypes
import json
from functools import lru_cache
from math import prod

import numpy as np

from kdsl.interpreter.dtypes import bits_dtype, elem_bytes
from kdsl.ir.types import parse_type
from kdsl.runtime.device_print import print_bits

PRINT_SYMBOL = "kdsl_device_print"

_PRINT_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int32, ctypes.c_int32, ctypes.c_int32,
                               ctypes.POINTER(ctypes.c_void_p))


def site_description(prefix: str, hex: bool, types: list[str]) -> bytes:
    """The constant string a compiled `print` passes as `site`."""
    return json.dumps({"prefix": prefix, "hex": hex, "types": types}).encode() + b"\0"


def _device_print(site: bytes, x: int, y: int, z: int, operands: ctypes.Array) -> None:
    desc = json.loads(site)
    values = []
    for i, text in enumerate(desc["types"]):
        ty = parse_type(text)
        elem = ty.scalar
        raw = ctypes.string_at(operands[i], prod(ty.shape) * elem_bytes(elem))
        values.append((ty, np.frombuffer(raw, bits_dtype(elem))))
    print_bits(desc["prefix"], desc["hex"], (x, y, z), values)


_CALLBACK = _PRINT_TYPE(_device_print)


def symbols() -> dict[str, int]:
    """The C symbols compiled kernels may call, by name: their addresses."""
    return {PRINT_SYMBOL: ctypes.cast(_CALLBACK, ctypes.c_void_p).value}


@lru_cache(maxsize=None)
def register_symbols() -> None:
    """Make the `symbols` known to LLVM's JIT linker (once per process)."""
    import llvmlite.binding as llvm

    for name, address in symbols().items():
        llvm.add_symbol(name, address)
