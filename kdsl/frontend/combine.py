"""The typing rules of reductions and scans with a combine function: `reduce`,
`associative_scan`, and what is built on them: `argmax`/`argmin`, `cumsum`/`cumprod`.

A combine function maps k accumulated values and k new ones (scalars of the
inputs' dtypes) to k values of the same dtypes. It becomes the region of a
`reduce_with` or `scan` op (see `kdsl.ir.ops`): a left fold along the axis in
index order (from the end for a reverse scan). `Combine` is what callers pass:
a Python callable from Tensors to Tensors, so builtins with a known combine
(argmax, cumsum) and user `@kdsl.kernel` functions share one path.
"""
from __future__ import annotations

from math import prod
from typing import Callable, Sequence

from kdsl.frontend import semantic as sem
from kdsl.frontend.semantic import Tensor, fail
from kdsl.frontend.shapes import reshape
from kdsl.ir import types as t
from kdsl.ir.builder import Builder
from kdsl.ir.core import Value
from kdsl.ir.types import PointerType

Combine = Callable[[list[Tensor]], object]


def _inputs(b: Builder, input: object, what: str) -> list[Tensor]:
    xs = list(input) if isinstance(input, (tuple, list)) else [input]
    if not xs or not all(isinstance(x, Tensor) and x.shape for x in xs):
        raise fail(f"kl.{what} needs a block or a tuple of blocks, got {sem.type_name(input)}")
    if any(isinstance(x.dtype, PointerType) for x in xs):
        raise fail(f"kl.{what} cannot combine pointers")
    return sem.broadcast_all(b, *xs)


def _axis(axis: object, rank: int, what: str) -> int:
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise fail(f"kl.{what}'s axis must be a compile-time integer, got {sem.type_name(axis)}")
    if not -rank <= axis < rank:
        raise fail(f"axis {axis} is out of range for kl.{what} on a block of rank {rank}")
    return axis % rank


def _flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise fail(f"{name} must be a compile-time True or False")
    return value


def _body(b: Builder, combine: Combine, xs: list[Tensor], what: str) -> Callable[[list[Value]], list[Value]]:
    """The region builder: the combine function's results, checked against the inputs' dtypes."""
    def body(args: list[Value]) -> list[Value]:
        out = combine([Tensor(a) for a in args])
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        if len(outs) != len(xs):
            raise fail(f"kl.{what}'s combine function must return {len(xs)} value(s), got {len(outs)}")
        handles = []
        for o, x, a in zip(outs, xs, args):
            o = sem.to_tensor(b, o, x.dtype)
            if o.dtype != x.dtype:
                raise fail(f"kl.{what}'s combine function returns {o.dtype} for a {x.dtype} input; "
                           f"convert with .to({x.dtype})")
            handles.append(sem.broadcast_to(b, o, a.type.shape).handle)
        return handles
    return body


def _unpack(results: Sequence[Value], single: bool) -> Tensor | tuple[Tensor, ...]:
    tensors = tuple(Tensor(r) for r in results)
    return tensors[0] if single else tensors


def reduce_with(b: Builder, input: object, axis: object, combine: Combine, keep_dims: object,
                what: str = "reduce") -> Tensor | tuple[Tensor, ...]:
    """Fold `input` (a block or tuple of blocks) along `axis` (all of them when None) with `combine`."""
    xs = _inputs(b, input, what)
    keep, rank = _flag(keep_dims, "keep_dims"), len(xs[0].shape)
    flattened = axis is None
    if flattened:
        xs = [reshape(b, x, (prod(x.shape),)) for x in xs]
        axis = 0
    axis = _axis(axis, len(xs[0].shape), what)
    shape = xs[0].shape[:axis] + xs[0].shape[axis + 1:]
    op = b.combining("reduce_with", [x.handle for x in xs], [t.block(shape, x.dtype) for x in xs],
                     {"axis": axis}, _body(b, combine, xs, what))
    results = [Tensor(r) for r in op.results]
    if keep:
        results = [sem.broadcast_to(b, r, (1,) * rank) if flattened else sem.expand_dims(b, r, axis)
                   for r in results]
    return _unpack([r.handle for r in results], not isinstance(input, (tuple, list)))


def scan(b: Builder, input: object, axis: object, combine: Combine, reverse: object,
         what: str = "associative_scan") -> Tensor | tuple[Tensor, ...]:
    """The inclusive scan of `input` (a block or tuple of blocks) along `axis` with `combine`."""
    xs = _inputs(b, input, what)
    attrs = {"axis": _axis(axis, len(xs[0].shape), what), "reverse": _flag(reverse, "reverse")}
    op = b.combining("scan", [x.handle for x in xs], [x.type for x in xs], attrs, _body(b, combine, xs, what))
    return _unpack(op.results, not isinstance(input, (tuple, list)))


def _accumulated(b: Builder, x: object) -> Tensor:
    """cumsum's input: integers narrower than 32 bits widen to 32, as `sum` does."""
    x = sem.to_tensor(b, x)
    if isinstance(x.dtype, t.ScalarType) and x.dtype.is_int and x.dtype.bits < 32:
        return sem.cast(b, x, t.i32 if x.dtype.is_signed or x.dtype.is_bool else t.u32)
    return x


def cumulative(b: Builder, x: object, axis: object, reverse: object, op: str) -> Tensor:
    """cumsum (op "add") and cumprod (op "mul")."""
    what = "cumsum" if op == "add" else "cumprod"
    x = _accumulated(b, x) if op == "add" else sem.to_tensor(b, x)
    return scan(b, x, axis, lambda v: sem.binary(b, op, v[0], v[1]), reverse, what)  # type: ignore[return-value]


_NEGATED = {"gt": "le", "ge": "lt", "lt": "ge", "le": "gt"}


def _arg_combine(b: Builder, largest: bool, tie_break_left: bool) -> Combine:
    """(value, index) pairs: take the new pair when its value is strictly better (or equal, to
    break ties toward the highest index). For floats a NaN is never taken and any number
    replaces a NaN: take = new == new and not (new <= acc), with `<=` ordered, so false when
    acc is NaN (written so, LLVM's NaN analysis of the select chain stays linear)."""
    pred = ("gt" if tie_break_left else "ge") if largest else ("lt" if tie_break_left else "le")

    def combine(v: list[Tensor]) -> tuple[Tensor, Tensor]:
        acc, acc_index, new, new_index = v
        if acc.dtype.is_float:  # type: ignore[union-attr]
            not_worse = sem.logical_not(b, sem.compare(b, _NEGATED[pred], new, acc))
            take = sem.binary(b, "and", sem.compare(b, "eq", new, new), not_worse)
        else:
            take = sem.compare(b, pred, new, acc)
        return sem.where(b, take, new, acc), sem.where(b, take, new_index, acc_index)
    return combine


def arg_reduce(b: Builder, input: object, axis: object, tie_break_left: object, keep_dims: object,
               largest: bool) -> Tensor:
    """argmax (largest) / argmin: the int32 index of the best element along `axis`."""
    what = "argmax" if largest else "argmin"
    x = _inputs(b, input, what)[0]
    if isinstance(input, (tuple, list)):
        raise fail(f"kl.{what} takes one block, not a tuple")
    if axis is None:
        index = reshape(b, sem.arange(b, 0, prod(x.shape)), x.shape)
    else:
        axis = _axis(axis, len(x.shape), what)
        n = x.shape[axis]
        along = tuple(n if d == axis else 1 for d in range(len(x.shape)))
        index = sem.broadcast_to(b, reshape(b, sem.arange(b, 0, n), along), x.shape)
    combine = _arg_combine(b, largest, _flag(tie_break_left, "tie_break_left"))
    return reduce_with(b, (x, index), axis, combine, keep_dims, what)[1]  # type: ignore[index]
