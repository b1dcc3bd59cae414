"""The numpy semantics of the `dot` op: `acc + a @ b`, computed in the result (accumulator) type."""
from __future__ import annotations

from typing import Any

import numpy as np

from kdsl.interpreter.dtypes import payload_dtype
from kdsl.ir.types import Type


def dot(rt: Type, args: list[np.ndarray], attrs: dict[str, Any], env: Any) -> np.ndarray:
    """Operands widen exactly to the result type (int8 → int32, fp16/bf16 → fp32), so
    products and sums round (or wrap) in that type as on the CPU."""
    a, b, acc = args
    dtype = payload_dtype(rt.scalar)
    return acc + np.matmul(a.astype(dtype), b.astype(dtype))
