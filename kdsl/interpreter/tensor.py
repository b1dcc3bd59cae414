"""`InterpTensor`: the values a kernel's code sees when it is interpreted.

Every operator does what the compiler's visitor (`frontend.codegen`) does for
the same syntax, through `semantic` with the session's evaluating builder:
`/` is `truediv`, `//` `floordiv`, `**` repeated multiplication by a compile-time
int. Python numbers stay Python numbers until they meet a block and adopt its
type (weak typing). Scalars convert to `bool` and `int`, so `if` and `range()`
work on runtime scalars.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from kdsl import language
from kdsl.errors import CompilationError, KdslError
from kdsl.frontend import semantic as sem
from kdsl.frontend.builtins import MATMUL_UNSUPPORTED, MethodCall, attribute_of_tensor
from kdsl.interpreter.context import active_session
from kdsl.ir.types import ScalarType


def builder() -> Any:
    session = active_session()
    if session is None:
        raise KdslError("this block belongs to an interpreted launch that has ended")
    return session.builder


def wrap(x: Any) -> Any:
    """Results of `semantic` as the user sees them: Tensors become InterpTensors."""
    if isinstance(x, sem.Tensor) and not isinstance(x, InterpTensor):
        return InterpTensor(x.handle)
    if isinstance(x, (tuple, list)):
        return type(x)(wrap(v) for v in x)
    return x


def plain(x: Any) -> Any:
    """Arguments as `semantic` takes them: constexpr unwrapped, numpy scalars as Python numbers."""
    if isinstance(x, language.constexpr):
        return x.value
    if isinstance(x, np.generic):
        return x.item()
    return x


def _apply(fn: Callable[..., Any], *args: Any) -> Any:
    return wrap(fn(builder(), *(plain(a) for a in args)))


def _binary(op: str, reflected: bool = False) -> Callable[["InterpTensor", Any], Any]:
    if reflected:
        return lambda self, other: _apply(sem.binary, op, other, self)
    return lambda self, other: _apply(sem.binary, op, self, other)


def _compare(pred: str) -> Callable[["InterpTensor", Any], Any]:
    return lambda self, other: _apply(sem.compare, pred, self, other)


def _method_named(name: str) -> Callable[..., Any]:
    """The block method `name` (see `builtins._METHODS`), as interpreted code calls it."""
    def method(self: "InterpTensor", *args: Any, **kwargs: Any) -> Any:
        return self._method(name, args, kwargs)

    method.__name__ = name
    return method


class InterpTensor(sem.Tensor):
    """A scalar or block computed by the interpreter; its `handle` is an `EvalValue`."""

    __slots__ = ()

    __add__, __radd__ = _binary("add"), _binary("add", True)
    __sub__, __rsub__ = _binary("sub"), _binary("sub", True)
    __mul__, __rmul__ = _binary("mul"), _binary("mul", True)
    __truediv__, __rtruediv__ = _binary("truediv"), _binary("truediv", True)
    __floordiv__, __rfloordiv__ = _binary("floordiv"), _binary("floordiv", True)
    __mod__, __rmod__ = _binary("mod"), _binary("mod", True)
    __and__, __rand__ = _binary("and"), _binary("and", True)
    __or__, __ror__ = _binary("or"), _binary("or", True)
    __xor__, __rxor__ = _binary("xor"), _binary("xor", True)
    __lshift__, __rlshift__ = _binary("shl"), _binary("shl", True)
    __rshift__, __rrshift__ = _binary("shr"), _binary("shr", True)
    __lt__, __le__, __gt__, __ge__ = _compare("lt"), _compare("le"), _compare("gt"), _compare("ge")
    __eq__, __ne__ = _compare("eq"), _compare("ne")  # type: ignore[assignment]
    __hash__ = None  # type: ignore[assignment]

    def __pow__(self, exponent: Any) -> Any:
        return _apply(sem.power, self, exponent)

    def __rpow__(self, base: Any) -> Any:
        return _apply(sem.power, base, self)

    def __matmul__(self, other: Any) -> Any:
        raise CompilationError(MATMUL_UNSUPPORTED)

    __rmatmul__ = __matmul__

    @property
    def T(self) -> Any:
        return _apply(attribute_of_tensor, self, "T")

    def __neg__(self) -> Any:
        return _apply(sem.negate, self)

    def __pos__(self) -> Any:
        return self

    def __invert__(self) -> Any:
        return _apply(sem.invert, self)

    def __getitem__(self, key: Any) -> Any:
        return _apply(sem.index, self, list(key) if isinstance(key, tuple) else [key])

    # methods, as the visitor offers them on blocks ---------------------------------
    def _method(self, name: str, args: tuple, kwargs: dict[str, Any]) -> Any:
        call = MethodCall(self, name)
        return wrap(call(builder(), [plain(a) for a in args], {k: plain(v) for k, v in kwargs.items()}))

    def to(self, *args: Any, **kwargs: Any) -> Any:
        return self._method("to", args, kwargs)

    def sum(self, *args: Any, **kwargs: Any) -> Any:
        return self._method("sum", args, kwargs)

    def max(self, *args: Any, **kwargs: Any) -> Any:
        return self._method("max", args, kwargs)

    def min(self, *args: Any, **kwargs: Any) -> Any:
        return self._method("min", args, kwargs)

    reshape, view, ravel = _method_named("reshape"), _method_named("view"), _method_named("ravel")
    trans, permute, split = _method_named("trans"), _method_named("permute"), _method_named("split")
    argmax, argmin = _method_named("argmax"), _method_named("argmin")
    cumsum, cumprod = _method_named("cumsum"), _method_named("cumprod")
    reduce, associative_scan = _method_named("reduce"), _method_named("associative_scan")

    # Python conversions of runtime scalars -------------------------------------------
    def _scalar(self, what: str) -> Any:
        if self.shape:
            raise CompilationError(f"{what} needs a scalar, got a block of shape {self.shape}; "
                                   "use kl.where, a mask, or reduce the block first")
        return self.handle.data.item()

    def __bool__(self) -> bool:
        return bool(self._scalar("a condition"))

    def __index__(self) -> int:
        if not (isinstance(self.dtype, ScalarType) and self.dtype.is_int):
            raise TypeError(f"a {self.dtype} value cannot be used as an integer index")
        return int(self._scalar("an integer index"))

    def __int__(self) -> int:
        return int(self._scalar("int()"))

    def __float__(self) -> float:
        return float(self._scalar("float()"))

    def numpy(self) -> np.ndarray:
        """A copy of the values (bf16 and fp8 as float32, pointers as uint64 addresses)."""
        return np.array(self.handle.data)

    def __repr__(self) -> str:
        data = np.array2string(np.asarray(self.handle.data), threshold=64, edgeitems=4)
        return f"InterpTensor({self.type}, {data})"

    __str__ = __repr__
