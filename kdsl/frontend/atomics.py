"""The typing rules of the atomics: `kl.atomic_<kind>(pointer, val, mask, sem, scope)` and `kl.atomic_cas`.

`val` (and `cmp`) convert to the pointee type and broadcast to the pointer's
shape, as `store` does; `mask` broadcasts likewise. `sem` and `scope` are
validated and recorded on the op with Triton's defaults filled in ("acq_rel",
"gpu"); the CPU honours `sem` and has a single scope. The element types are
Triton's (fp16 max/min/xchg besides); fp8 and 8-bit integers have no atomics.
"""
from __future__ import annotations

from typing import Any, Callable

from kdsl.errors import CompilationError
from kdsl.frontend import semantic as sem
from kdsl.frontend.semantic import PyNumber, Tensor
from kdsl.ir import types as t
from kdsl.ir.builder import Builder
from kdsl.ir.types import PointerType, ScalarType

INTEGERS = (t.i32, t.i64, t.u32, t.u64)
NUMBERS = INTEGERS + (t.f16, t.f32, t.f64)
RMW_TYPES: dict[str, tuple[ScalarType, ...]] = {
    "add": NUMBERS + (t.bf16,), "max": NUMBERS, "min": NUMBERS, "xchg": NUMBERS,
    "and": INTEGERS, "or": INTEGERS, "xor": INTEGERS,
}
# as Triton: any element of 16, 32 or 64 bits; floats compare bit patterns
CAS_TYPES = INTEGERS + (t.i16, t.u16, t.f16, t.bf16, t.f32, t.f64)
SEMS = ("acquire", "release", "acq_rel", "relaxed")
SCOPES = ("gpu", "cta", "sys")


def _pointer(ptr: object, what: str, allowed: tuple[ScalarType, ...]) -> Tensor:
    if not isinstance(ptr, Tensor) or not isinstance(ptr.dtype, PointerType):
        raise CompilationError(f"kl.{what} needs a pointer or a block of pointers, got {sem.type_name(ptr)}")
    if ptr.dtype.elem not in allowed:
        raise CompilationError(f"kl.{what} supports {', '.join(map(str, allowed))}, "
                               f"not pointers to {ptr.dtype.elem}")
    return ptr


def _operand(b: Builder, value: object, ptr: Tensor, what: str) -> Tensor:
    """`value` converted to the pointee type and broadcast to the pointer's shape."""
    elem = ptr.dtype.elem  # type: ignore[union-attr]
    v = sem.to_tensor(b, value, sem.adopt(value, elem) if isinstance(value, PyNumber) else None)
    if isinstance(v.dtype, PointerType):
        raise CompilationError(f"kl.{what} cannot operate with pointer values")
    return sem.broadcast_to(b, sem.cast(b, v, elem), ptr.shape)


def _ordering(what: str, semantic: object, scope: object) -> dict[str, str]:
    if semantic is not None and semantic not in SEMS:
        raise CompilationError(f"kl.{what}'s sem must be one of {', '.join(map(repr, SEMS))} or None, "
                               f"got {semantic!r}")
    if scope is not None and scope not in SCOPES:
        raise CompilationError(f"kl.{what}'s scope must be one of {', '.join(map(repr, SCOPES))} or None, "
                               f"got {scope!r}")
    return {"sem": semantic or "acq_rel", "scope": scope or "gpu"}


def atomic_rmw(kind: str) -> Callable[..., Tensor]:
    """The handler of `kl.atomic_<kind>`: returns the values memory held before."""
    what = f"atomic_{kind}"

    def handler(b: Builder, pointer: object, val: object, mask: object = None, sem_: object = None,
                scope: object = None) -> Tensor:
        ptr = _pointer(pointer, what, RMW_TYPES[kind])
        operands = [ptr.handle, _operand(b, val, ptr, what).handle]
        if mask is not None and mask is not True:
            m = sem.to_bool(b, sem.to_tensor(b, mask))
            operands.append(sem.broadcast_to(b, m, ptr.shape).handle)
        result = ptr.type.with_scalar(ptr.dtype.elem)  # type: ignore[union-attr]
        return Tensor(b.value("atomic_rmw", operands, result, kind=kind, **_ordering(what, sem_, scope)))

    return handler


def atomic_cas(b: Builder, pointer: object, cmp: object, val: object, sem_: object = None,
               scope: object = None) -> Tensor:
    """Store `val` where memory holds `cmp`; returns the values memory held before."""
    ptr = _pointer(pointer, "atomic_cas", CAS_TYPES)
    operands = [ptr.handle, _operand(b, cmp, ptr, "atomic_cas").handle, _operand(b, val, ptr, "atomic_cas").handle]
    result = ptr.type.with_scalar(ptr.dtype.elem)  # type: ignore[union-attr]
    return Tensor(b.value("atomic_cas", operands, result, **_ordering("atomic_cas", sem_, scope)))


HANDLERS: dict[str, Callable[..., Any]] = {
    **{f"atomic_{kind}": atomic_rmw(kind) for kind in RMW_TYPES},
    "atomic_cas": atomic_cas,
}
