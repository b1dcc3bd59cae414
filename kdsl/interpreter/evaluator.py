"""An evaluating builder: `semantic`'s Builder interface, computing each op at once with numpy.

`semantic` builds IR through `value(name, operands, result_type, **attrs)` and
`create(name, operands, result_types, attrs)`. Here operands are `EvalValue`s
(an IR type and a numpy payload) and each call returns the computed result, so
the interpreter reuses every typing rule of the compiler unchanged.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from kdsl.errors import UNKNOWN_LOC, Loc
from kdsl.interpreter import combine, numpy_ops
from kdsl.interpreter.dtypes import finish
from kdsl.ir.builder import Builder
from kdsl.ir.types import Type


class EvalValue:
    """A computed value: its kdsl type and its payload (a numpy array, 0-d for scalars)."""

    __slots__ = ("type", "data")

    def __init__(self, type: Type, data: np.ndarray):
        self.type = type
        self.data = data

    @classmethod
    def of(cls, type: Type, value: Any) -> "EvalValue":
        """A value of `type` from a Python number or array, converted as `type` stores it."""
        return cls(type, finish(type, value))

    def __repr__(self) -> str:
        return f"EvalValue({self.type}, {self.data!r})"


class EvaluatedOp:
    """What `create` returns: the op's results, as `Builder.create`'s Operation offers them."""

    __slots__ = ("results",)

    def __init__(self, results: list[EvalValue]):
        self.results = results

    @property
    def result(self) -> EvalValue:
        return self.results[0]


class EvaluatingBuilder(Builder):
    """Computes ops instead of recording them; `env` supplies program ids and memory.

    It keeps `Builder`'s `loc` and `located`; it has no insertion region.
    """

    def __init__(self, env: numpy_ops.Env, loc: Loc = UNKNOWN_LOC):
        super().__init__(None, loc)  # type: ignore[arg-type]
        self.env = env

    def value(self, name: str, operands: list[EvalValue], result_type: Type, **attrs: Any) -> EvalValue:
        return self.create(name, operands, [result_type], attrs).result

    def create(self, name: str, operands: list[EvalValue], result_types: list[Type],
               attrs: dict[str, Any] | None = None, regions: list[Any] | None = None) -> EvaluatedOp:
        if regions:
            raise NotImplementedError("the evaluating builder runs control flow in Python; it builds no regions")
        result_type = result_types[0] if result_types else None
        data = numpy_ops.evaluate(name, result_type, [v.data for v in operands], attrs or {}, self.env,
                                  [v.type for v in operands])
        return EvaluatedOp([] if result_type is None else [EvalValue(result_type, data)])  # type: ignore[arg-type]

    def combining(self, name: str, operands: list[EvalValue], result_types: list[Type], attrs: dict[str, Any],
                  body: Callable[[list[EvalValue]], list[EvalValue]]) -> EvaluatedOp:
        """`reduce_with`/`scan`: `body` runs on whole slices along the axis (see `interpreter.combine`)."""
        return EvaluatedOp(combine.IMPLS[name](operands, result_types, attrs, body, EvalValue))
