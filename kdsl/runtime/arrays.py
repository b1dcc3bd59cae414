"""Array adapters: what a kernel needs of an array argument, from numpy, torch and the array protocols.

A kernel receives a pointer to the array's first element, never a copy; strides
are the user's business (API.md). Where an array must be copied to another memory
(the simulator's), its whole memory span travels, so that pointer and strides
keep their meaning there.
"""
from __future__ import annotations

import ctypes
import sys
from typing import Any, NamedTuple

import numpy as np

from kdsl.ir import types as t
from kdsl.ir.types import ScalarType

_NUMPY: dict[np.dtype, ScalarType] = {
    np.dtype(name): dtype
    for name, dtype in (
        ("bool", t.i1), ("int8", t.i8), ("int16", t.i16), ("int32", t.i32), ("int64", t.i64),
        ("uint8", t.u8), ("uint16", t.u16), ("uint32", t.u32), ("uint64", t.u64),
        ("float16", t.f16), ("float32", t.f32), ("float64", t.f64),
    )
}

# ml_dtypes' numpy dtypes, known by name so that ml_dtypes stays optional
_NUMPY_BY_NAME: dict[str, ScalarType] = {"bfloat16": t.bf16, "float8_e4m3fn": t.fp8e4nv, "float8_e5m2": t.fp8e5}

_TORCH: dict[str, ScalarType] = {
    "torch.bool": t.i1, "torch.int8": t.i8, "torch.int16": t.i16, "torch.int32": t.i32, "torch.int64": t.i64,
    "torch.uint8": t.u8, "torch.uint16": t.u16, "torch.uint32": t.u32, "torch.uint64": t.u64,
    "torch.float16": t.f16, "torch.bfloat16": t.bf16, "torch.float32": t.f32, "torch.float64": t.f64,
    "torch.float8_e4m3fn": t.fp8e4nv, "torch.float8_e5m2": t.fp8e5,
}


def _data_field_offset() -> int | None:
    """Where a numpy array object holds the address of its first element: numpy's C struct
    (`PyArrayObject_fields`) has it right after CPython's object header, as `PyArray_DATA` reads
    it; None where a probe array says otherwise (or ids are not addresses)."""
    if sys.implementation.name != "cpython":
        return None
    offset = object.__basicsize__
    probe = np.arange(3.0)[1:]
    found = ctypes.c_void_p.from_address(id(probe) + offset).value
    return offset if found == probe.__array_interface__["data"][0] else None


_DATA_OFFSET = _data_field_offset()


def numpy_address(array: np.ndarray) -> int:
    """The address of `array`'s first element: read from the array object itself where
    `_data_field_offset` allows (a quarter of the time of `__array_interface__`, which builds a
    dict: launches of small kernels feel that), else from `__array_interface__`."""
    if _DATA_OFFSET is None:
        return array.__array_interface__["data"][0]
    return ctypes.c_void_p.from_address(id(array) + _DATA_OFFSET).value or 0


class ArrayArg(NamedTuple):
    """An array argument as the runtime sees it (a named tuple: one is made per array per launch)."""

    address: int
    dtype: ScalarType
    device: str
    readonly: bool = False


class UnsupportedArray(TypeError):
    """An array-like object whose element type or device kdsl cannot use."""


def numpy_dtype(dtype: np.dtype) -> ScalarType:
    known = _NUMPY.get(dtype) if isinstance(dtype, np.dtype) else None
    if known is not None:
        return known
    try:
        dtype = np.dtype(dtype)
        return _NUMPY.get(dtype) or _NUMPY_BY_NAME[dtype.name]
    except (KeyError, TypeError):
        raise UnsupportedArray(f"arrays of {dtype} are not supported") from None


def scalar_dtype(value: np.generic) -> ScalarType:
    return numpy_dtype(value.dtype)


def is_torch_tensor(obj: Any) -> bool:
    """Whether `obj` is one of torch's objects with a `data_ptr` (its tensors and their
    subclasses), told without importing torch."""
    return type(obj).__module__.startswith("torch") and hasattr(obj, "data_ptr")


def adapt_array(obj: Any) -> ArrayArg | None:
    """`obj` as an ArrayArg, or None when it is not an array at all (numpy scalars are numbers)."""
    if isinstance(obj, (int, float, np.generic)):
        return None
    if isinstance(obj, np.ndarray):
        return ArrayArg(numpy_address(obj), numpy_dtype(obj.dtype), "cpu",
                        not obj.flags.writeable)
    if is_torch_tensor(obj):
        dtype = _TORCH.get(str(obj.dtype))
        if dtype is None:
            raise UnsupportedArray(f"torch tensors of {obj.dtype} are not supported")
        if obj.device.type not in ("cpu", "cuda"):  # "meta" tensors, say, have no memory at all
            raise UnsupportedArray(f"torch tensors on the '{obj.device.type}' device are not supported "
                                   "(cpu and cuda tensors are)")
        if str(obj.layout) != "torch.strided":
            raise UnsupportedArray(f"torch tensors of layout {obj.layout} are not supported (strided ones are)")
        return ArrayArg(obj.data_ptr(), dtype, obj.device.type)
    if hasattr(obj, "__cuda_array_interface__"):
        iface = obj.__cuda_array_interface__
        return ArrayArg(iface["data"][0], numpy_dtype(np.dtype(iface["typestr"])), "cuda", iface["data"][1])
    if hasattr(obj, "__array_interface__"):
        iface = obj.__array_interface__
        return ArrayArg(iface["data"][0], numpy_dtype(np.dtype(iface["typestr"])), "cpu", iface["data"][1])
    if hasattr(obj, "__dlpack__") and hasattr(obj, "__dlpack_device__"):
        device_type, _ = obj.__dlpack_device__()
        if device_type != 1:  # kDLCPU
            raise UnsupportedArray("DLPack arrays are supported on the CPU only for now")
        return adapt_array(np.from_dlpack(obj))
    return None


_SAME_SIZE_INT = {1: "uint8", 2: "int16", 4: "int32", 8: "int64"}


def host_view(obj: Any) -> np.ndarray:
    """A numpy array over a host array argument's own memory: same address, shape and strides.

    Torch tensors are viewed as integers of their element size (numpy lacks bf16 and fp8):
    the bytes are what matter to whoever copies them.
    """
    if isinstance(obj, np.ndarray):
        return obj
    if is_torch_tensor(obj):
        import torch

        return obj.detach().view(getattr(torch, _SAME_SIZE_INT[obj.element_size()])).numpy()
    if hasattr(obj, "__array_interface__"):
        return np.asarray(obj)
    return np.from_dlpack(obj)


def host_bytes(address: int, nbytes: int) -> np.ndarray:
    """Host memory [address, address + nbytes) as a writable uint8 array (no copy)."""
    if nbytes == 0:
        return np.zeros(0, np.uint8)
    return np.frombuffer((ctypes.c_char * nbytes).from_address(address), np.uint8)


def memory_span(arr: np.ndarray) -> tuple[np.ndarray, int]:
    """The bytes an array's elements span (strided arrays included), and its first element's offset.

    The kernel gets a pointer to the first element of the array's own memory, never of a copy
    in another layout, so strides passed by the user mean what they mean on the GPU.
    """
    if arr.flags.c_contiguous:
        return arr.reshape(-1).view(np.uint8) if arr.size else np.zeros(0, np.uint8), 0
    low, high = np.lib.array_utils.byte_bounds(arr)
    return host_bytes(low, high - low), arr.__array_interface__["data"][0] - low
