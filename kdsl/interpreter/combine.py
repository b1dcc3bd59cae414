"""`reduce_with` and `scan` on numpy, vectorised: the region's body runs once per position
along the axis, on whole slices, folding in the order `kdsl.ir.ops` defines.

The body (from `kdsl.frontend.combine`) is the user's combine function applied
to typed values, its results broadcast to the slice's shape; on slices it
computes every lane at once, which equals running it per element because
combine functions are elementwise.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from kdsl.interpreter.dtypes import finish
from kdsl.ir import types as t
from kdsl.ir.types import Type

Body = Callable[[list[Any]], list[Any]]


def _slice(value: Any, axis: int, i: int, make: Callable[[Type, np.ndarray], Any]) -> Any:
    data = np.take(value.data, i, axis=axis)
    return make(t.block(data.shape, value.type.scalar), data)


def _step(acc: list[Any], operands: list[Any], axis: int, i: int, body: Body,
          make: Callable[[Type, np.ndarray], Any]) -> list[Any]:
    new = [_slice(v, axis, i, make) for v in operands]
    return body(acc + new)


def reduce_with(operands: list[Any], result_types: list[Type], attrs: dict[str, Any], body: Body,
                make: Callable[[Type, np.ndarray], Any]) -> list[Any]:
    axis = attrs["axis"]
    n = operands[0].type.shape[axis]
    acc = [_slice(v, axis, 0, make) for v in operands]
    for i in range(1, n):
        acc = _step(acc, operands, axis, i, body, make)
    return [make(rt, finish(rt, a.data)) for a, rt in zip(acc, result_types)]


def scan(operands: list[Any], result_types: list[Type], attrs: dict[str, Any], body: Body,
         make: Callable[[Type, np.ndarray], Any]) -> list[Any]:
    axis = attrs["axis"]
    n = operands[0].type.shape[axis]
    order = list(range(n))[::-1] if attrs["reverse"] else list(range(n))
    acc = [_slice(v, axis, order[0], make) for v in operands]
    columns = {order[0]: acc}
    for i in order[1:]:
        acc = _step(acc, operands, axis, i, body, make)
        columns[i] = acc
    return [make(rt, finish(rt, np.stack([columns[i][k].data for i in range(n)], axis=axis)))
            for k, rt in enumerate(result_types)]


IMPLS = {"reduce_with": reduce_with, "scan": scan}
