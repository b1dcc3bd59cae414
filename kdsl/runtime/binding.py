"""Launch arguments: binding to parameters, checking, and the specialization key.

Everything here runs before anything is compiled or launched, so a wrong
argument is a `LaunchError` naming the parameter, never a crash.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kdsl import language
from kdsl.errors import LaunchError
from kdsl.frontend.semantic import int_range
from kdsl.frontend.source import KernelSource
from kdsl.ir import types as t
from kdsl.ir.types import PointerType, ScalarType, Type
from kdsl.runtime.arrays import UnsupportedArray, adapt_array, is_torch_tensor, numpy_address, scalar_dtype

DIVISIBILITY = 16
_TRITON_TYPE_NAMES = {"fp16": t.f16, "fp32": t.f32, "fp64": t.f64}
_CONSTEXPR_TYPES = (bool, int, float, str, type(None), tuple, language.dtype)


@dataclass
class BoundLaunch:
    """A launch's arguments, classified: compile-time constants and typed runtime values."""

    constants: dict[str, Any] = field(default_factory=dict)
    runtime: list[tuple[str, Type]] = field(default_factory=list)
    values: list[int | float | bool] = field(default_factory=list)
    arrays: list[Any] = field(default_factory=list)  # per runtime argument: the array object, or None
    arg_attrs: list[dict[str, Any]] = field(default_factory=list)
    devices: set[str] = field(default_factory=set)
    by_name: dict[str, Any] = field(default_factory=dict)

    def key(self) -> tuple:
        """What the compiled code depends on: types, divisibility, ints equal to 1, ints 0 or positive,
        constant values."""
        return (
            tuple((n, ty, tuple(sorted(a.items()))) for (n, ty), a in zip(self.runtime, self.arg_attrs)),
            tuple((n, type(v).__name__, repr(v)) for n, v in self.constants.items()),
        )


def bind(src: KernelSource, args: tuple, kwargs: dict[str, Any]) -> BoundLaunch:
    bound = BoundLaunch()
    for p, value in src.bind(args, kwargs, LaunchError).items():
        bound.by_name[p] = value
        if p in src.constexprs or value is None:
            _constant(src.name, p, value, bound)
        else:
            _runtime(src.name, p, value, bound)
    return bound


def bind_signature(src: KernelSource, signature: str, constants: dict[str, Any]) -> BoundLaunch:
    """A launch described by types instead of values, for compiling ahead of time: `signature`
    lists the runtime parameters' types in order as Triton writes them (`"*fp32:16, *fp32, i32"`:
    IR names or Triton's `fp32`/`fp16`/`fp64`, `:16` for a pointer or int divisible by 16);
    `constants` gives the constexpr parameters."""
    runtime = [p for p in src.params if p not in src.constexprs and p not in constants]
    items = [item.strip() for item in signature.split(",") if item.strip()]
    if len(items) != len(runtime):
        raise LaunchError(f"'{src.name}': the signature has {len(items)} types for the runtime parameters "
                          f"({', '.join(runtime)}), which are {len(runtime)}")
    bound = BoundLaunch()
    for param, item in zip(runtime, items):
        ty, attrs = _signature_type(src.name, param, item)
        bound.runtime.append((param, ty))
        bound.values.append(0)
        bound.arrays.append(None)
        bound.arg_attrs.append(attrs)
        bound.by_name[param] = None
    for param, value in src.bind((), {**{p: 0 for p in runtime}, **constants}, LaunchError).items():
        if param not in runtime:
            bound.by_name[param] = value
            _constant(src.name, param, value, bound)
    return bound


def _signature_type(kernel: str, param: str, item: str) -> tuple[Type, dict[str, Any]]:
    name, _, hint = item.partition(":")
    pointer = name.startswith("*")
    scalar = t.SCALARS.get(name.lstrip("*")) or _TRITON_TYPE_NAMES.get(name.lstrip("*"))
    if scalar is None or hint not in ("", str(DIVISIBILITY)):
        raise LaunchError(f"'{kernel}': cannot read the signature's type {item!r} for '{param}' (write e.g. "
                          f"'*fp32', '*fp16:{DIVISIBILITY}', 'i32', 'i64:{DIVISIBILITY}', 'fp32')")
    attrs = {"divisibility": DIVISIBILITY} if hint else {}
    return (PointerType(scalar) if pointer else scalar), attrs


def _constant(kernel: str, param: str, value: Any, bound: BoundLaunch) -> None:
    if isinstance(value, np.generic):
        value = value.item()
    if not isinstance(value, _CONSTEXPR_TYPES):
        raise LaunchError(f"'{kernel}': the compile-time constant '{param}' must be a number, bool, string, "
                          f"tuple, dtype or None, got {type(value).__name__}")
    bound.constants[param] = value


def _runtime(kernel: str, param: str, value: Any, bound: BoundLaunch) -> None:
    try:
        array = adapt_array(value)
    except UnsupportedArray as e:
        raise LaunchError(f"'{kernel}': argument '{param}': {e}") from None
    attrs: dict[str, Any] = {}
    if array is not None:
        ty: Type = PointerType(array.dtype)
        raw: int | float | bool = array.address
        bound.devices.add(array.device)
        if array.address % DIVISIBILITY == 0:
            attrs["divisibility"] = DIVISIBILITY
    else:
        ty, raw = _scalar(kernel, param, value)
        if isinstance(raw, int) and not isinstance(raw, bool):
            attrs = int_attrs(raw)
    bound.runtime.append((param, ty))
    bound.values.append(raw)
    bound.arrays.append(value if array is not None else None)
    bound.arg_attrs.append(attrs)


def int_attrs(raw: int) -> dict[str, int]:
    """What an int argument's code is specialised on (its IR argument attributes)."""
    attrs = {}
    if raw % DIVISIBILITY == 0:
        attrs["divisibility"] = DIVISIBILITY
    if raw == 1:  # Triton's equal-to-1 specialisation: a stride of 1 makes pointers contiguous
        attrs["value"] = 1
    if raw >= 0:  # sizes and strides: offsets computed from them keep their runs under `%`
        attrs["min"] = min(raw, 1)
    return attrs


def quick_signature(args: tuple) -> tuple[tuple, list[int | float]] | None:
    """For a launch whose arguments are all numpy arrays, torch tensors on the CPU, Python
    numbers and numpy scalars: what `_runtime` would specialise them on (element type, alignment,
    `int_attrs`, the width an int takes) and whether arrays are writable
    (`CompiledKernel.check_writable`), and their raw values, without building a `BoundLaunch`;
    None for any other argument. The launch fast path (`Kernel.run`) keys its compiled kernels
    on this; a key of arguments the full path refuses is never stored, so it needs no checks."""
    signature: list[tuple] = []
    values: list[int | float] = []
    for value in args:
        kind = type(value)
        if kind is np.ndarray:
            address = numpy_address(value)
            signature.append((value.dtype, address % DIVISIBILITY == 0, value.flags.writeable))
            values.append(address)
        elif kind is int or kind is bool:
            signature.append((kind, _int_type(value), *int_attrs(value).items()) if kind is int else (bool,))
            values.append(value)
        elif kind is float:
            signature.append((float,))
            values.append(value)
        elif _is_cpu_tensor(value):
            address = value.data_ptr()
            signature.append((value.dtype, address % DIVISIBILITY == 0))
            values.append(address)
        elif isinstance(value, np.generic):
            raw = value.item()
            signature.append((value.dtype, *int_attrs(raw).items()) if type(raw) is int else (value.dtype,))
            values.append(raw)
        else:
            return None
    return tuple(signature), values


_INT_TYPES = [(ty, *int_range(ty)) for ty in (t.i32, t.i64, t.u64)]


def _int_type(value: int) -> ScalarType | None:
    """The type a Python int argument takes: i32, else i64, else u64 (None where none holds it)."""
    for ty, lo, hi in _INT_TYPES:
        if lo <= value <= hi:
            return ty
    return None


_TENSOR_TYPES: dict[type, Any] = {}  # the argument types met: torch.strided for torch's tensors, else None


def _is_cpu_tensor(value: Any) -> bool:
    """Whether `value` is a strided torch tensor on the CPU (`is_torch_tensor`, as `adapt_array`
    tells them), its type's answer kept."""
    kind = type(value)
    if kind not in _TENSOR_TYPES:
        _TENSOR_TYPES[kind] = sys.modules["torch"].strided if is_torch_tensor(value) else None
    strided = _TENSOR_TYPES[kind]
    return strided is not None and getattr(value, "is_cpu", False) is True and getattr(value, "layout", None) is strided


def _scalar(kernel: str, param: str, value: Any) -> tuple[ScalarType, int | float | bool]:
    if isinstance(value, np.generic):
        try:
            return scalar_dtype(value), value.item()
        except UnsupportedArray as e:
            raise LaunchError(f"'{kernel}': argument '{param}': {e}") from None
    if isinstance(value, bool):
        return t.i1, value
    if isinstance(value, int):
        ty = _int_type(value)
        if ty is not None:
            return ty, value
        raise LaunchError(f"'{kernel}': argument '{param}' = {value} does not fit in int64 or uint64")
    if isinstance(value, float):
        return t.f32, value
    raise LaunchError(f"'{kernel}': argument '{param}' has unsupported type {type(value).__name__}; "
                      "pass an array (numpy, torch), a number, or annotate the parameter kl.constexpr")


def resolve_grid(kernel: str, grid: Any, by_name: dict[str, Any]) -> tuple[int, int, int]:
    """The launch grid as three non-negative ints."""
    if callable(grid):
        try:
            grid = grid(dict(by_name))
        except Exception as e:
            raise LaunchError(f"'{kernel}': the grid function raised {type(e).__name__}: {e}") from e
    if isinstance(grid, (int, np.integer)) and not isinstance(grid, bool):
        grid = (grid,)
    if not isinstance(grid, (tuple, list)) or not 1 <= len(grid) <= 3:
        raise LaunchError(f"'{kernel}': the grid must be an int or a tuple of 1 to 3 ints, got {grid!r}")
    dims = []
    for d in grid:
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)):
            raise LaunchError(f"'{kernel}': grid dimensions must be ints, got {grid!r}")
        if d < 0:
            raise LaunchError(f"'{kernel}': grid dimensions must not be negative, got {tuple(grid)}")
        if d >= 2**31:
            raise LaunchError(f"'{kernel}': grid dimension {d} is too large (at most 2**31 - 1)")
        dims.append(int(d))
    return tuple(dims + [1] * (3 - len(dims)))  # type: ignore[return-value]


def target_for(kernel: str, requested: str | None, devices: set[str]) -> str:
    """The target a launch runs on: the one asked for, else where the arrays live."""
    if len(devices) > 1:
        raise LaunchError(f"'{kernel}': arrays on different devices ({', '.join(sorted(devices))})")
    if requested is None:
        return "cuda" if devices == {"cuda"} else "cpu"
    if requested not in ("cpu", "cuda", "sim", "interpret"):
        raise LaunchError(f"'{kernel}': unknown target {requested!r}; choose cpu, cuda, sim or interpret")
    if requested == "cpu" and devices == {"cuda"}:
        raise LaunchError(f"'{kernel}': target 'cpu' cannot use arrays on a CUDA device")
    return requested

