"""Numpy/Python references for kdsl's elementwise semantics (see kdsl/ir/ops.py)."""
from __future__ import annotations

import numpy as np


def wrap(values, dtype) -> np.ndarray:
    """Python ints reduced modulo 2**bits into `dtype` (two's complement)."""
    dt = np.dtype(dtype)
    mask = (1 << (8 * dt.itemsize)) - 1
    unsigned = np.array([int(v) & mask for v in values], dtype=f"u{dt.itemsize}")
    return unsigned.view(dt)


def _div(a: int, b: int, bits: int, signed: bool) -> int:
    if b == 0:
        return -1
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def _rem(a: int, b: int, bits: int, signed: bool) -> int:
    if b == 0:
        return a
    return a - b * _div(a, b, bits, signed)


def _shl(a: int, b: int, bits: int, signed: bool) -> int:
    return 0 if b % (1 << bits) >= bits else a << b


def _shr(a: int, b: int, bits: int, signed: bool) -> int:
    if b % (1 << bits) >= bits:
        return -1 if a < 0 else 0
    return a >> b


_INT_BINARY = {
    "add": lambda a, b, bits, s: a + b,
    "sub": lambda a, b, bits, s: a - b,
    "mul": lambda a, b, bits, s: a * b,
    "div": _div,
    "rem": _rem,
    "min": lambda a, b, bits, s: min(a, b),
    "max": lambda a, b, bits, s: max(a, b),
    "and": lambda a, b, bits, s: a & b,
    "or": lambda a, b, bits, s: a | b,
    "xor": lambda a, b, bits, s: a ^ b,
    "shl": _shl,
    "shr": _shr,
}

_INT_UNARY = {"neg": lambda a: -a, "abs": abs, "not": lambda a: ~a}


def int_binary(op: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    bits, signed = 8 * x.dtype.itemsize, x.dtype.kind == "i"
    fn = _INT_BINARY[op]
    return wrap([fn(int(a), int(b), bits, signed) for a, b in zip(x, y)], x.dtype)


def int_unary(op: str, x: np.ndarray) -> np.ndarray:
    return wrap([_INT_UNARY[op](int(a)) for a in x], x.dtype)


FLOAT_BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
    "rem": np.fmod, "min": np.fmin, "max": np.fmax,
}
FLOAT_UNARY = {"neg": np.negative, "abs": np.abs, "exp": np.exp, "log": np.log, "sqrt": np.sqrt}
CMP = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
       "gt": np.greater, "ge": np.greater_equal}


def float_to_int(x: np.ndarray, dtype) -> np.ndarray:
    """Saturating conversion toward zero; NaN gives 0."""
    info = np.iinfo(dtype)
    out = []
    for v in x.astype(np.float64):
        if np.isnan(v):
            out.append(0)
        elif v >= info.max:
            out.append(info.max)
        elif v <= info.min:
            out.append(info.min)
        else:
            out.append(int(np.trunc(v)))
    return np.array(out, dtype=dtype)
