"""What each `kl.*` builtin and each block method builds: argument binding and dispatch to `semantic`."""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

from kdsl import language
from kdsl.errors import CompilationError
from kdsl.frontend import atomics, combine, debugging, semantic as sem
from kdsl.frontend import shapes
from kdsl.frontend.dot import dot
from kdsl.frontend.semantic import Tensor
from kdsl.ir import types as t
from kdsl.ir.builder import Builder
from kdsl.ir.ops import FLOAT_UNARY


MATMUL_UNSUPPORTED = "`@` is not an operator on blocks (nor in Triton); use kl.dot(a, b) for a matrix product"


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
        return sem.python_value(lambda: (x + div - 1) // div)
    return sem.binary(b, "floordiv", sem.binary(b, "sub", sem.binary(b, "add", x, div), 1), div)


def _loop_only(name: str) -> Callable[..., None]:
    def handler(b: Builder, *args: Any, **kwargs: Any) -> None:
        raise CompilationError(f"kl.{name} can only be used as the iterable of a for loop")

    return handler


def _math(name: str) -> Callable[[Builder, Any], Tensor]:
    return lambda b, x: sem.unary_math(b, name, x)


def _float_operand(x: Any, what: str) -> Tensor:
    if not isinstance(x, Tensor) or not (isinstance(x.dtype, t.ScalarType) and x.dtype.is_float):
        raise CompilationError(f"kl.{what} needs a floating-point block or scalar, got {sem.type_name(x)}")
    return x


def _sigmoid(b: Builder, x: Any) -> Tensor:
    x = _float_operand(x, "sigmoid")
    denominator = sem.binary(b, "add", 1, sem.unary_math(b, "exp", sem.negate(b, x)))
    return sem.binary(b, "truediv", 1, denominator)


def _fdiv(b: Builder, x: Any, y: Any, ieee_rounding: Any = False) -> Tensor:
    _float_operand(x if isinstance(x, Tensor) else y, "fdiv")
    return sem.binary(b, "truediv", x, y)


def _softmax(b: Builder, x: Any, dim: Any = None, keep_dims: Any = False, ieee_rounding: Any = False) -> Tensor:
    x = _float_operand(x, "softmax")
    axis = 0 if dim is None else dim
    shifted = sem.binary(b, "sub", x, sem.reduce(b, x, axis, "max", keep_dims))
    numerator = sem.unary_math(b, "exp", shifted)
    return sem.binary(b, "truediv", numerator, sem.reduce(b, numerator, axis, "sum", keep_dims))


def _expand_dims(b: Builder, input: Any, axis: Any) -> Tensor:
    x = sem.to_tensor(b, input)
    axes = axis if isinstance(axis, tuple) else (axis,)
    if not all(isinstance(a, int) and not isinstance(a, bool) for a in axes):
        raise CompilationError(f"kl.expand_dims needs compile-time integer axes, got {axis!r}")
    rank = len(x.shape) + len(axes)
    for a in sorted(a % rank if -rank <= a < rank else a for a in axes):
        x = sem.expand_dims(b, x, a)
    return x


def _broadcast_to(b: Builder, input: Any, *shape: Any) -> Tensor:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return sem.broadcast_to(b, sem.to_tensor(b, input), sem.check_shape(shape))


def _broadcast(b: Builder, input: Any, other: Any) -> tuple[Tensor, Tensor]:
    x, y = sem.broadcast_all(b, sem.to_tensor(b, input), sem.to_tensor(b, other))
    return x, y


def _static_assert(b: Builder, cond: Any, msg: Any = "") -> None:
    if isinstance(cond, Tensor):
        raise CompilationError("kl.static_assert needs a compile-time condition; this one is a runtime value")
    if not cond:
        raise CompilationError(f"static_assert failed{': ' + str(msg) if msg else ''}")


def _static_print(b: Builder, *values: Any) -> None:
    print(*(f"<{v.type}>" if isinstance(v, Tensor) else v for v in values))


def _hint(what: str) -> Callable[..., Any]:
    """`kl.multiple_of(x, values)` / `kl.max_contiguous(x, values)`: the identity, with a promise
    (per dimension, or one for all) that the axis analysis takes as a fact."""
    def hint(b: Builder, input: Any, values: Any) -> Any:
        items = values if isinstance(values, tuple) else (values,)
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in items):
            raise CompilationError(f"kl.{what} needs compile-time positive integers, got {values!r}")
        x = sem.to_tensor(b, input)
        if not (isinstance(x.dtype, t.ScalarType) and x.dtype.is_int and not x.dtype.is_bool):
            raise CompilationError(f"kl.{what} takes integers, got {x.type}")
        rank = max(len(x.shape), 1)
        if len(items) not in (1, rank):
            raise CompilationError(f"kl.{what} needs 1 or {rank} values for {x.type}, got {len(items)}")
        promise = ",".join(str(v) for v in (items * rank if len(items) == 1 else items))
        return Tensor(b.value(what, [x.handle], x.type, values=promise))

    return hint


def combine_function(ctx: BuiltinCall, fn: Any, what: str) -> combine.Combine:
    """A `@kdsl.kernel` combine function as `combine` takes it: compiled, it is generated as a
    device function called inside the op's region (inlined later); interpreted, it runs on numpy."""
    from kdsl.runtime.kernel import Kernel

    if not isinstance(fn, Kernel):
        raise CompilationError(f"kl.{what}'s combine_fn must be a @kdsl.kernel function, got {sem.type_name(fn)}")
    if ctx.generator is None:
        from kdsl.interpreter.tensor import wrap

        return lambda args: fn(*wrap(args))
    return lambda args: ctx.generator.specializer.call(ctx.generator, fn, list(args), {})


def _with_combine(ctx: BuiltinCall, name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """kl.reduce / kl.associative_scan: the combine function needs the caller, not just the builder."""
    arguments = _bind(f"kl.{name}", _SIGNATURES[name], args, kwargs)
    fn = combine_function(ctx, arguments.pop("combine_fn"), name)
    if name == "reduce":
        return combine.reduce_with(ctx.builder, arguments["input"], arguments["axis"], fn, arguments["keep_dims"])
    return combine.scan(ctx.builder, arguments["input"], arguments["axis"], fn, arguments["reverse"])


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
    **{name: _math(name) for name in FLOAT_UNARY},
    "fma": sem.fma,
    "umulhi": sem.umulhi,
    "abs": sem.absolute,
    "sum": lambda b, input, axis=None, keep_dims=False, dtype=None: sem.reduce(b, input, axis, "sum", keep_dims,
                                                                              dtype),
    "max": lambda b, input, axis=None, keep_dims=False: sem.reduce(b, input, axis, "max", keep_dims),
    "min": lambda b, input, axis=None, keep_dims=False: sem.reduce(b, input, axis, "min", keep_dims),
    "cdiv": _cdiv,
    "static_range": _loop_only("static_range"),
    "range": _loop_only("range"),
    "clamp": lambda b, x, min, max: sem.binary(b, "min", sem.binary(b, "max", x, min), max),
    "sigmoid": _sigmoid,
    "fdiv": _fdiv,
    "softmax": _softmax,
    "expand_dims": _expand_dims,
    "broadcast_to": _broadcast_to,
    "broadcast": _broadcast,
    "static_assert": _static_assert,
    "static_print": _static_print,
    "device_print": debugging.device_print,
    "device_assert": debugging.device_assert,
    "multiple_of": _hint("multiple_of"),
    "max_contiguous": _hint("max_contiguous"),
    "dot": dot,
    **atomics.HANDLERS,
    "reshape": lambda b, input, *shape, can_reorder=False: shapes.reshape(b, input, shape, can_reorder),
    "view": lambda b, input, *shape: shapes.reshape(b, input, shape, True, "view"),
    "ravel": shapes.ravel,
    "trans": lambda b, input, *dims: shapes.permute(b, input, dims, "trans"),
    "permute": lambda b, input, *dims: shapes.permute(b, input, dims),
    "join": shapes.join,
    "split": shapes.split,
    "argmax": lambda b, input, axis, tie_break_left=True, keep_dims=False:
        combine.arg_reduce(b, input, axis, tie_break_left, keep_dims, largest=True),
    "argmin": lambda b, input, axis, tie_break_left=True, keep_dims=False:
        combine.arg_reduce(b, input, axis, tie_break_left, keep_dims, largest=False),
    "cumsum": lambda b, input, axis=0, reverse=False: combine.cumulative(b, input, axis, reverse, "add"),
    "cumprod": lambda b, input, axis=0, reverse=False: combine.cumulative(b, input, axis, reverse, "mul"),
}

_SIGNATURES = {fn.__name__: inspect.signature(fn.__wrapped__) for fn in language.BUILTINS}


def _bind(name: str, signature: inspect.Signature, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as e:
        raise CompilationError(f"{name}(): {e}") from None
    bound.apply_defaults()
    return bound.arguments


def _call(fn: Callable[..., Any], b: Builder, what: str, signature: inspect.Signature, leading: list[Any],
          args: list[Any], kwargs: dict[str, Any]) -> Any:
    """`fn(b, *leading, ...)` with `args`/`kwargs` bound to `signature`, defaults applied;
    keyword-only parameters (after `*shape`) are passed by keyword."""
    arguments = _bind(what, signature, args, kwargs)
    positional: list[Any] = list(leading)
    keywords: dict[str, Any] = {}
    for param in signature.parameters.values():
        value = arguments[param.name]
        if param.kind is param.VAR_POSITIONAL:
            positional.extend(value)
        elif param.kind is param.KEYWORD_ONLY:
            keywords[param.name] = value
        else:
            positional.append(value)
    return fn(b, *positional, **keywords)


def range_bounds(args: list[Any], kwargs: dict[str, Any]) -> list[Any]:
    """`kl.range(...)`'s start, end and step; its hints must be compile-time values."""
    arguments = _bind("kl.range", _SIGNATURES["range"], args, kwargs)
    for name in list(arguments)[3:]:
        if isinstance(arguments[name], Tensor):
            raise CompilationError(f"kl.range's {name} must be a compile-time constant; it is a runtime value")
    arg1, arg2, step = arguments["arg1"], arguments["arg2"], arguments["step"]
    return [0 if arg2 is None else arg1, arg1 if arg2 is None else arg2, 1 if step is None else step]


def call_builtin(ctx: BuiltinCall, name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    if name in ("reduce", "associative_scan"):
        return _with_combine(ctx, name, args, kwargs)
    return _call(HANDLERS[name], ctx.builder, f"kl.{name}", _SIGNATURES[name], [], args, kwargs)


def _to(b: Builder, x: Tensor, dtype: Any, bitcast: bool = False) -> Tensor:
    """`x.to(dtype)`: `x` converted to `dtype` by value. Floats become integers by truncation toward
    zero, out-of-range values saturating and NaN giving 0; conversions to a narrower float, fp8
    included, round to nearest even (to fp8, finite overflow saturates); to `int1` means `!= 0`.
    With `bitcast=True` the bits are reinterpreted instead, between types of one width."""
    if not isinstance(bitcast, bool):
        raise CompilationError("bitcast must be a compile-time True or False")
    return sem.cast(b, x, dtype, bitcast)


_METHODS: dict[str, Callable[..., Any]] = {
    "to": _to,
    "sum": HANDLERS["sum"],
    "max": HANDLERS["max"],
    "min": HANDLERS["min"],
    "reshape": HANDLERS["reshape"],
    "view": HANDLERS["view"],
    "ravel": HANDLERS["ravel"],
    "trans": HANDLERS["trans"],
    "permute": HANDLERS["permute"],
    "split": HANDLERS["split"],
    "argmax": HANDLERS["argmax"],
    "argmin": HANDLERS["argmin"],
    "cumsum": HANDLERS["cumsum"],
    "cumprod": HANDLERS["cumprod"],
}


_COMBINE_METHODS = ("reduce", "associative_scan")


@dataclass
class MethodCall:
    """A block method looked up but not yet called, like `x.to` in `x.to(kl.float32)`."""

    tensor: Tensor
    name: str

    def __call__(self, b: Builder, args: list[Any], kwargs: dict[str, Any], generator: Any = None) -> Any:
        if self.name in _COMBINE_METHODS:  # x.reduce(axis, fn): kl.reduce with x first
            return _with_combine(BuiltinCall(b, generator), self.name, [self.tensor, *args], kwargs)
        fn = _METHODS[self.name]
        params = list(inspect.signature(fn).parameters.values())[2:]
        return _call(fn, b, f".{self.name}", inspect.Signature(params), [self.tensor], args, kwargs)


def attribute_of_tensor(b: Builder, x: Tensor, attr: str) -> Any:
    if attr == "T":  # as Triton's tensor.T
        if len(x.shape) != 2:
            raise CompilationError(f".T transposes 2D blocks; this one has shape {x.shape}: "
                                   "use kl.permute(x, dims) to reorder other dimensions")
        return shapes.permute(b, x, (1, 0))
    if attr == "dtype":
        return x.dtype
    if attr == "shape":
        return x.shape
    if attr in _METHODS or attr in _COMBINE_METHODS:
        return MethodCall(x, attr)
    raise CompilationError(f"blocks have no attribute '{attr}'")
