"""What each `kl.*` builtin and each block method builds: argument binding and dispatch to `semantic`."""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

from kdsl import language
from kdsl.errors import CompilationError
from kdsl.frontend import semantic as sem
from kdsl.frontend.semantic import Tensor
from kdsl.ir import types as t
from kdsl.ir.builder import Builder


@dataclass
class BuiltinCall:
    """What a builtin handler may use: the builder and the generator calling it."""

    builder: Builder
    generator: Any


def _axis(axis: Any) -> int:
    if isinstance(axis, Tensor) or not isinstance(axis, int) or isinstance(axis, bool) or axis not in (0, 1, 2):
        raise CompilationError(f"axis must be a compile-time 0, 1 or 2, got {sem.type_name(axis)}"
                               f"{'' if isinstance(axis, Tensor) else f' {axis!r}'}")
    return axis


def _program_id(b: Builder, axis: Any) -> Tensor:
    return Tensor(b.value("program_id", [], t.i32, axis=_axis(axis)))


def _num_programs(b: Builder, axis: Any) -> Tensor:
    return Tensor(b.value("num_programs", [], t.i32, axis=_axis(axis)))


def _like(x: Any, what: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise CompilationError(f"kl.{what} needs a block or scalar value, got {sem.type_name(x)}")
    return x


def _cdiv(b: Builder, x: Any, div: Any) -> Any:
    if not isinstance(x, Tensor) and not isinstance(div, Tensor):
        return (x + div - 1) // div
    return sem.binary(b, "floordiv", sem.binary(b, "sub", sem.binary(b, "add", x, div), 1), div)


def _static_range(b: Builder, *args: Any) -> None:
    raise CompilationError("kl.static_range can only be used as the iterable of a for loop")


HANDLERS: dict[str, Callable[..., Any]] = {
    "program_id": _program_id,
    "num_programs": _num_programs,
    "arange": sem.arange,
    "zeros": lambda b, shape, dtype: sem.full(b, shape, 0, dtype),
    "full": sem.full,
    "zeros_like": lambda b, input: sem.full(b, _like(input, "zeros_like").shape, 0, input.dtype),
    "full_like": lambda b, input, value: sem.full(b, _like(input, "full_like").shape, value, input.dtype),
    "load": sem.load,
    "store": sem.store,
    "where": sem.where,
    "minimum": lambda b, x, y: sem.binary(b, "min", x, y),
    "maximum": lambda b, x, y: sem.binary(b, "max", x, y),
    "exp": lambda b, x: sem.unary_math(b, "exp", x),
    "log": lambda b, x: sem.unary_math(b, "log", x),
    "sqrt": lambda b, x: sem.unary_math(b, "sqrt", x),
    "abs": sem.absolute,
    "sum": lambda b, input, axis=None, keep_dims=False: sem.reduce(b, input, axis, "sum", keep_dims),
    "max": lambda b, input, axis=None, keep_dims=False: sem.reduce(b, input, axis, "max", keep_dims),
    "min": lambda b, input, axis=None, keep_dims=False: sem.reduce(b, input, axis, "min", keep_dims),
    "cdiv": _cdiv,
    "static_range": _static_range,
}

_SIGNATURES = {fn.__name__: inspect.signature(fn.__wrapped__) for fn in language.BUILTINS}


def _bind(name: str, signature: inspect.Signature, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as e:
        raise CompilationError(f"{name}(): {e}") from None
    bound.apply_defaults()
    return bound.arguments


def call_builtin(ctx: BuiltinCall, name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    arguments = _bind(f"kl.{name}", _SIGNATURES[name], args, kwargs)
    extra = arguments.pop("args", ())
    return HANDLERS[name](ctx.builder, *arguments.values(), *extra)


def _to(b: Builder, x: Tensor, dtype: Any, bitcast: bool = False) -> Tensor:
    if not isinstance(bitcast, bool):
        raise CompilationError("bitcast must be a compile-time True or False")
    return sem.cast(b, x, dtype, bitcast)


_METHODS: dict[str, Callable[..., Any]] = {
    "to": _to,
    "sum": HANDLERS["sum"],
    "max": HANDLERS["max"],
    "min": HANDLERS["min"],
}


@dataclass
class MethodCall:
    """A block method looked up but not yet called, like `x.to` in `x.to(kl.float32)`."""

    tensor: Tensor
    name: str

    def __call__(self, b: Builder, args: list[Any], kwargs: dict[str, Any]) -> Any:
        fn = _METHODS[self.name]
        params = list(inspect.signature(fn).parameters.values())[2:]
        signature = inspect.Signature(params)
        arguments = _bind(f".{self.name}", signature, args, kwargs)
        return fn(b, self.tensor, *arguments.values())


def attribute_of_tensor(x: Tensor, attr: str) -> Any:
    if attr == "dtype":
        return x.dtype
    if attr == "shape":
        return x.shape
    if attr in _METHODS:
        return MethodCall(x, attr)
    raise CompilationError(f"blocks have no attribute '{attr}'")
