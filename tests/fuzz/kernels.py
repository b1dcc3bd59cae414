"""Random well-typed kdsl kernels, their numpy evaluation with an error bound, and the check of the
targets against it.

A kernel is an expression DAG in SSA order (`Node`s), each node one statement of the kernel's
source, over leaves that are masked loads (2D tiles, row and column vectors, 1D blocks), index
blocks, masks, runtime scalars and constants. The nodes are elementwise operations on floats
(fp16, fp32, fp64) and int32 (with Triton's promotion between them), math functions, casts,
comparisons and `kl.where`, broadcasts between shapes (BR, 1), (1, BC) and (BR, BC), reductions
along either axis (with `keep_dims` or not) whose results are broadcast back, and, in the `loop`
structure, loop-carried blocks accumulated over the column tiles of a matrix (an online softmax
among them). Three structures: `flat` (1D blocks over a vector), `tile` (a 2D grid of 2D tiles)
and `loop` (one program per row tile, looping over the column tiles).

The generator keeps for every node a static interval of its values (sound for the reference and,
with a margin, for the targets), with which it keeps values finite and in range (float16 and
int32 casts, `exp`'s argument), and structural lower bounds (`abs(x) + 0.5 >= 0.5` on every
target) that keep denominators and the arguments of `log`, `sqrt` and `rsqrt` away from 0 and
from negative values.

The reference evaluates each node on every program's block at once (a leading axis of programs),
as a float64 value (int64 holding int32 values for integers) and a bound on how far any target's
value can be from it: each operation carries its operands' bounds through (exactly, for the
monotone functions and roundings: the bound of f(x) for x known within e is the larger of
|f(x +- e) - f(x)|) and adds its own rounding (a few ulps for the math functions, one unit
roundoff for each rounded operation, the reference's own float64 rounding, and the smallest normal
number for underflow and flushing), so the check holds whatever order, contraction into fma or
math library a target uses, and fails on a real miscompilation. A comparison whose operands are
within their bounds of each other is ambiguous: `kl.where` on it may take either branch, and the
bound covers both. Integers are exact unless they come from float-to-int conversions of inexact
values; bitwise operations on such values are not checked (an infinite bound), which is rare.

`check(spec, seed)` runs a kernel on each target on fresh inputs, into outputs poisoned with NaN or
a sentinel and placed inside poisoned guard regions, and checks every element of every output
buffer: the written ones against the reference, the rest (masked-out lanes, guards) unchanged.
"""
from __future__ import annotations

import contextlib
import importlib.util
import itertools
import math
import os
import random
import tempfile
import traceback
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

import kdsl
from tests.helpers import poisoned

TARGETS = ("cpu", "sim")

# ---------------------------------------------------------------------------------------- types

F16, F32, F64, I32, I1 = "float16", "float32", "float64", "int32", "int1"
LIT_F, LIT_I = "pyfloat", "pyint"  # Python numbers in the source: weakly typed
FLOATS = (F16, F32, F64)
WIDTH = {F16: 16, F32: 32, F64: 64}
NUMPY = {F16: np.float16, F32: np.float32, F64: np.float64, I32: np.int32, I1: np.bool_}
# unit roundoff of one operation; fp16 operations compute in fp32 and round (double rounding)
UNIT = {F16: 2.0**-11 + 2.0**-22, F32: 2.0**-24, F64: 2.0**-53}
REF = 2.0**-51  # the float64 reference's own rounding, per operation (generously)
TINY = {F16: 2.0**-14, F32: 2.0**-126, F64: 2.0**-1022}  # absolute: underflow, subnormals, flushing
MATH_ULPS = 4
# generated floats stay within these magnitudes (so nothing overflows, casts to fp16 and int32 fit)
LIMIT = {F16: 1000.0, F32: 1e5, F64: 1e5}
WIDEN = {F16: 2.0**-5, F32: 2.0**-12, F64: 2.0**-12}  # static intervals' margin for the targets' errors
INT_MIN, INT_MAX = -2**31, 2**31 - 1
INPUT_RANGE = 4.0  # float inputs lie in [-4, 4], int inputs in [-1000, 1000] (or the whole int32 range)
INT_RANGE = 1000


def kl_dtype(d: str) -> str:
    return "kl." + d


def compute_type(a: str, b: str, op: str) -> str:
    """The computation type of `a op b`, as kdsl's semantic.compute_type (Triton's rules)."""
    if a in (LIT_F, LIT_I):
        a = _adopt(a, b)
    if b in (LIT_F, LIT_I):
        b = _adopt(b, a)
    if op in ("and", "or", "xor"):
        return I32 if I32 in (a, b) else I1
    if op == "div":
        if a not in FLOATS and b not in FLOATS:
            return F32
        return F64 if F64 in (a, b) else F32
    if a in FLOATS or b in FLOATS:
        if F64 in (a, b):
            return F64
        return F32 if F32 in (a, b) else F16
    return I32


def _adopt(lit: str, other: str) -> str:
    if other in FLOATS:
        return other
    return F32 if lit == LIT_F else I32


def reduction_type(d: str, fn: str) -> str:
    if fn == "sum" or d in (F32, F64, I32):
        return d
    return F32 if d == F16 else I32


# ----------------------------------------------------------------------------------- choosers

class Chooser:
    """The generator's source of choices: hypothesis's `draw`, or a seeded random.Random."""

    def integer(self, lo: int, hi: int) -> int:
        raise NotImplementedError

    def choice(self, seq):
        seq = list(seq)
        return seq[self.integer(0, len(seq) - 1)]

    def chance(self, p: float) -> bool:
        return self.integer(0, 999) < p * 1000

    def weighted(self, weights: dict):
        keys = [k for k, w in weights.items() if w > 0]
        total = sum(int(weights[k] * 10) for k in keys)
        x = self.integer(0, total - 1)
        for k in keys:
            x -= int(weights[k] * 10)
            if x < 0:
                return k
        return keys[-1]


class DrawChooser(Chooser):
    def __init__(self, draw):
        self.draw = draw

    def integer(self, lo, hi):
        return self.draw(st.integers(lo, hi))


class RandomChooser(Chooser):
    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def integer(self, lo, hi):
        return self.rng.randint(lo, hi)


# ------------------------------------------------------------------------------------- nodes

@dataclass(frozen=True)
class Lit:
    """A Python number in the source (weakly typed: it adopts the type of what it meets)."""

    value: float | int

    @property
    def name(self) -> str:
        return repr(self.value)

    @property
    def kind(self) -> str:
        return "L"

    @property
    def dtype(self) -> str:
        return LIT_F if isinstance(self.value, float) else LIT_I

    @property
    def lo(self):
        return self.value

    @property
    def hi(self):
        return self.value

    @property
    def pos(self):
        return self.value if self.value >= 0 else None

    @property
    def exact(self):
        return True


@dataclass(eq=False)
class Node:
    """One value of the kernel: `name = <expression of op over args>`.

    kind: its shape, "RC" (BR, BC), "R1" (BR, 1), "1C" (1, BC), "R" (BR,), "C" (BC,), "S" scalar.
    lo, hi: the static interval of its values (targets' included); pos: a lower bound every target
    keeps too (structural: abs(x) + 0.5 >= 0.5), or None; exact: known without error."""

    name: str
    op: str
    kind: str
    dtype: str
    lo: float
    hi: float
    args: tuple = ()
    params: tuple = ()
    pos: float | None = None
    exact: bool = False
    text: str | None = None  # the expression, where it is not the op's own spelling (composites)
    hidden: bool = False  # a part of a composite: evaluated, not printed, not an operand
    phase: str = "main"


TWO_D = {"RC": (1, 1), "R1": (1, 0), "1C": (0, 1)}
FROM_PARTS = {v: k for k, v in TWO_D.items()}
SHAPE_TEXT = {"RC": "(BR, BC)", "R1": "(BR, 1)", "1C": "(1, BC)", "R": "(BR,)", "C": "(BC,)"}


def bkind(*kinds: str) -> str | None:
    """The kind of a broadcast of values of these kinds, or None if they do not broadcast (1D blocks
    of different lengths, a 1D block with a 2D one: numpy's rules would align them wrongly)."""
    ks = [k for k in kinds if k not in ("S", "L")]
    if not ks:
        return "S" if "S" in kinds else "L"
    if all(k in TWO_D for k in ks):
        return FROM_PARTS[(max(TWO_D[k][0] for k in ks), max(TWO_D[k][1] for k in ks))]
    if len(set(ks)) == 1:
        return ks[0]
    return None


# -------------------------------------------------------------------------------- geometry

def cdiv(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class Geometry:
    """structure: flat (1D blocks of BC over n = cols), tile (a grid of BR x BC tiles over a rows x
    cols matrix), loop (a program per BR rows, looping over the column tiles).
    masked: False when the blocks divide the arrays (and the kernel has no masks at all)."""

    structure: str
    rows: int
    cols: int
    BR: int
    BC: int
    masked: bool
    loop: str | None
    num_warps: int

    @property
    def ntr(self) -> int:
        return 1 if self.structure == "flat" else cdiv(self.rows, self.BR)

    @property
    def ntc(self) -> int:
        return cdiv(self.cols, self.BC) if self.structure != "loop" else 1

    @property
    def trips(self) -> int:
        return cdiv(self.cols, self.BC)

    @property
    def programs(self) -> int:
        return self.ntr * self.ntc

    @property
    def grid(self) -> tuple[int, ...]:
        return (self.ntr, self.ntc) if self.structure == "tile" else (self.programs,)

    def count(self, kind: str, axis) -> int:
        """How many elements a reduction of a `kind` value along `axis` combines."""
        if axis is None:
            return {"RC": self.BR * self.BC, "R1": self.BR, "1C": self.BC, "R": self.BR, "C": self.BC}[kind]
        return {("RC", 1): self.BC, ("RC", 0): self.BR, ("R1", 1): 1, ("1C", 0): 1, ("R", 0): self.BR,
                ("C", 0): self.BC}[(kind, axis)]


# reductions: (kind, axis, keep_dims) -> result kind
REDUCTIONS = {
    ("RC", 1, False): "R", ("RC", 1, True): "R1", ("RC", 0, False): "C", ("RC", 0, True): "1C",
    ("RC", None, False): "S", ("R1", 1, False): "R", ("R1", 1, True): "R1", ("1C", 0, False): "C",
    ("1C", 0, True): "1C", ("R1", None, False): "S", ("1C", None, False): "S", ("R", 0, False): "S",
    ("C", 0, False): "S", ("R", None, False): "S", ("C", None, False): "S",
}


@dataclass(frozen=True)
class ArrayArg:
    """An input array: `shape` one of "mat" (rows, cols), "row" (cols,), "col" (rows,), "vec" (n,)."""

    name: str
    shape: str
    dtype: str
    values: str  # "uniform", "quarters" (multiples of 0.25: ties), "small" or "full" (ints)


@dataclass(frozen=True)
class Output:
    name: str
    node: Node
    dtype: str  # the output array's type (a store converts to it)
    phase: str  # "main", "loop" (stored at every iteration) or "post"


@dataclass(eq=False)
class KernelSpec:
    geo: Geometry
    arrays: list[ArrayArg]
    nodes: list[Node]
    outputs: list[Output]
    features: frozenset = frozenset()
    _source: str | None = None

    @property
    def source(self) -> str:
        if self._source is None:
            self._source = emit(self)
        return self._source

    def __repr__(self):  # hypothesis prints this for a falsifying example
        return f"KernelSpec({self.geo}):\n{self.source}"


# ------------------------------------------------------------------------- static inference

def _fint(d: str, lo: float, hi: float):
    """A float result's interval, widened by the targets' possible errors; None beyond LIMIT."""
    m = max(abs(lo), abs(hi))
    if not m <= LIMIT[d]:
        return None
    w = WIDEN[d] * (m + 2.0**-10)
    return lo - w, hi + w


def _iint(lo, hi):
    if lo < INT_MIN or hi > INT_MAX:
        return INT_MIN, INT_MAX
    return int(lo), int(hi)


def _fits(x, d: str) -> bool:
    """Whether `x`'s values convert to `d` within the generator's limits."""
    if d in FLOATS:
        return max(abs(x.lo), abs(x.hi)) <= LIMIT[d]
    return True


def _bits(x) -> int:
    return max(int(abs(x.lo)).bit_length(), int(abs(x.hi)).bit_length())


def _shrink(p, d):
    """A lower bound `p` that the rounding of a `d` operation keeps (it may round down a little)."""
    if p is None:
        return None
    return p - 4 * UNIT[d] * abs(p) if d in FLOATS else p


MATH = ("exp", "exp2", "log", "log2", "sqrt", "rsqrt", "sin", "cos", "erf", "floor", "ceil")


_erf = np.vectorize(math.erf, otypes=[np.float64])


MATH_FN = {"exp": np.exp, "exp2": np.exp2, "log": np.log, "log2": np.log2, "sqrt": np.sqrt,
           "rsqrt": lambda z: 1.0 / np.sqrt(z), "erf": _erf, "floor": np.floor, "ceil": np.ceil,
           "sin": np.sin, "cos": np.cos}


def infer(geo: Geometry, op: str, args: tuple, params: tuple = ()):
    """(kind, dtype, lo, hi, pos, exact) of `op` on `args`, or None where the generator must not use
    it (shapes that do not broadcast, wrong types, values out of the limits, denominators near 0)."""
    a = args[0] if args else None
    if op in ("add", "sub", "mul", "max", "min", "div"):
        b = args[1]
        kind = bkind(a.kind, b.kind)
        if kind is None or I1 in (a.dtype, b.dtype):
            return None
        d = compute_type(a.dtype, b.dtype, op)
        if not (_fits(a, d) and _fits(b, d)):
            return None
        if op == "div":
            if b.pos is None or b.pos < 0.25:
                return None
            blo = max(b.lo, b.pos)
            qs = [a.lo / blo, a.lo / b.hi, a.hi / blo, a.hi / b.hi]
            lo, hi = min(qs), max(qs)
            pos = _shrink(a.pos / b.hi, d) if a.pos is not None else None
            r = _fint(d, lo, hi)
            return r and (kind, d, *r, pos, False)
        if op == "add":
            lo, hi = a.lo + b.lo, a.hi + b.hi
            pos = _shrink(a.pos + b.pos, d) if a.pos is not None and b.pos is not None else None
        elif op == "sub":
            lo, hi = a.lo - b.hi, a.hi - b.lo
            pos = None
        elif op == "mul":
            ps = [a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi]
            lo, hi = min(ps), max(ps)
            pos = _shrink(a.pos * b.pos, d) if a.pos is not None and b.pos is not None else None
        elif op == "max":
            lo, hi = max(a.lo, b.lo), max(a.hi, b.hi)
            ps = [p for p in (a.pos, b.pos) if p is not None]
            pos = max(ps) if ps else None
        else:
            lo, hi = min(a.lo, b.lo), min(a.hi, b.hi)
            pos = min(a.pos, b.pos) if a.pos is not None and b.pos is not None else None
        exact = a.exact and b.exact and (d == I32 or op in ("max", "min"))
        if d == I32:
            lo, hi = _iint(lo, hi)
            return kind, d, lo, hi, (lo if exact and lo >= 0 else None), exact
        r = _fint(d, lo, hi)
        return r and (kind, d, *r, pos, exact)
    if op == "fma":
        b, c = args[1], args[2]
        kind = bkind(a.kind, b.kind, c.kind)
        if kind is None or any(x.dtype not in FLOATS + (LIT_F,) for x in args):
            return None
        d = compute_type(compute_type(a.dtype, b.dtype, "mul"), c.dtype, "add")
        if not all(_fits(x, d) for x in args):
            return None
        ps = [a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi]
        if max(abs(p) for p in ps) > LIMIT[d]:
            return None
        r = _fint(d, min(ps) + c.lo, max(ps) + c.hi)
        return r and (kind, d, *r, None, False)
    if op in ("floordiv", "mod"):
        b = args[1]
        kind = bkind(a.kind, b.kind)
        if kind is None or a.dtype != I32 or b.dtype not in (I32, LIT_I) or not b.exact or b.lo < 1:
            return None
        m = max(abs(a.lo), abs(a.hi))
        if op == "floordiv":
            lo, hi = (-(m // b.lo) if a.lo < 0 else 0), (a.hi // b.lo if a.hi > 0 else 0)
        else:
            lo, hi = (-(b.hi - 1) if a.lo < 0 else 0), (b.hi - 1 if a.hi > 0 else 0)
        return kind, I32, lo, hi, (lo if a.exact and lo >= 0 else None), a.exact
    if op in ("and", "or", "xor"):
        b = args[1]
        kind = bkind(a.kind, b.kind)
        if kind is None or a.dtype != I32 or b.dtype not in (I32, LIT_I):
            return None
        if op == "and" and (a.lo >= 0 or b.lo >= 0):  # a nonnegative mask clears the sign
            lo, hi = 0, min(x.hi for x in (a, b) if x.lo >= 0)
        elif a.lo >= 0 and b.lo >= 0:
            k = max(_bits(a), _bits(b))
            lo, hi = 0, 2**k - 1
        else:
            k = max(_bits(a), _bits(b))
            lo, hi = _iint(-(2**k), 2**k - 1)
        exact = a.exact and b.exact
        return kind, I32, lo, hi, (lo if exact and lo >= 0 else None), exact
    if op in ("shl", "shr"):
        (k,) = params
        if a.dtype != I32:
            return None
        lo, hi = (a.lo * 2**k, a.hi * 2**k) if op == "shl" else (a.lo >> k, a.hi >> k)
        lo, hi = _iint(lo, hi)
        return a.kind, I32, lo, hi, (lo if a.exact and lo >= 0 else None), a.exact
    if op in ("neg", "abs", "invert", "pow2", "pow3"):
        if a.dtype == I1 or op == "invert" and a.dtype != I32:
            return None
        d = a.dtype
        if op == "neg":
            lo, hi = -a.hi, -a.lo
            pos = None
        elif op == "abs":
            if d == I32 and a.lo <= INT_MIN:
                return None
            lo, hi = (0 if a.lo <= 0 <= a.hi else min(abs(a.lo), abs(a.hi))), max(abs(a.lo), abs(a.hi))
            pos = 0.0
        elif op == "invert":
            lo, hi = -a.hi - 1, -a.lo - 1
            pos = None
        elif op == "pow2":
            lo, hi = (0 if a.lo <= 0 <= a.hi else min(a.lo**2, a.hi**2)), max(a.lo**2, a.hi**2)
            pos = 0.0
        else:
            lo, hi = a.lo**3, a.hi**3
            pos = _shrink(a.pos**3, d) if a.pos is not None else None
        if d == I32:
            lo, hi = _iint(lo, hi)
            return a.kind, d, lo, hi, (lo if a.exact and lo >= 0 else None), a.exact
        r = _fint(d, lo, hi)
        return r and (a.kind, d, *r, pos, a.exact and op in ("neg", "abs"))
    if op in MATH:
        d = a.dtype
        if d not in FLOATS:
            return None
        lo, hi = a.lo, a.hi
        if op in ("log", "log2", "rsqrt") and (a.pos is None or a.pos < 0.25) or op == "sqrt" and a.pos is None:
            return None
        if op in ("log", "log2", "sqrt", "rsqrt"):
            lo = max(lo, a.pos)
        if op in ("exp", "exp2") and MATH_FN[op](np.float64(hi)) > LIMIT[d]:
            return None
        f = MATH_FN[op]
        with np.errstate(all="ignore"):
            if op in ("sin", "cos"):
                flo, fhi = -1.0, 1.0
            elif op == "rsqrt":
                flo, fhi = float(f(np.float64(hi))), float(f(np.float64(lo)))
            else:
                flo, fhi = float(f(np.float64(lo))), float(f(np.float64(hi)))
        pos = {"exp": 0.0, "exp2": 0.0, "sqrt": _shrink(math.sqrt(a.pos), d) if a.pos is not None else None,
               "rsqrt": 0.0, "floor": math.floor(a.pos) if a.pos is not None else None,
               "ceil": math.ceil(a.pos) if a.pos is not None else None,
               "log": _shrink(math.log(a.pos), d) if a.pos is not None and a.pos >= 1 else None,
               "log2": _shrink(math.log2(a.pos), d) if a.pos is not None and a.pos >= 1 else None}.get(op)
        r = _fint(d, flo, fhi)
        return r and (a.kind, d, *r, pos, a.exact and op in ("floor", "ceil"))
    if op == "cast":
        (d,) = params
        s = a.dtype
        if s == d or s in (LIT_F, LIT_I):
            return None
        if s == I1:
            return a.kind, d, 0, 1, 0.0, a.exact
        if d == I1:
            return None
        if d == I32:
            lo, hi = math.trunc(a.lo), math.trunc(a.hi)
            return a.kind, d, lo, hi, (math.trunc(a.pos) if a.pos is not None else None), a.exact
        if not _fits(a, d):
            return None
        exact = a.exact and (s == I32 and max(abs(a.lo), abs(a.hi)) <= 2**11 or
                             s in FLOATS and WIDTH[s] <= WIDTH[d])
        pos = a.pos if s == I32 or WIDTH[s] <= WIDTH[d] else _shrink(a.pos, F16)
        r = _fint(d, a.lo, a.hi)
        return r and (a.kind, d, *r, pos, exact)
    if op == "cmp":
        b = args[1]
        kind = bkind(a.kind, b.kind)
        if kind is None or I1 in (a.dtype, b.dtype):
            return None
        d = compute_type(a.dtype, b.dtype, "cmp")
        if not (_fits(a, d) and _fits(b, d)):
            return None
        return kind, I1, 0, 1, None, a.exact and b.exact
    if op in ("land", "lor"):
        b = args[1]
        kind = bkind(a.kind, b.kind)
        if kind is None or a.dtype != I1 or b.dtype != I1:
            return None
        return kind, I1, 0, 1, None, a.exact and b.exact
    if op == "lnot":
        return (a.kind, I1, 0, 1, None, a.exact) if a.dtype == I1 else None
    if op == "where":
        p, q = args[1], args[2]
        kind = bkind(a.kind, p.kind, q.kind)
        if kind is None or kind == "L" or a.dtype != I1 or I1 in (p.dtype, q.dtype):
            return None
        d = compute_type(p.dtype, q.dtype, "where")
        if not (_fits(p, d) and _fits(q, d)):
            return None
        lo, hi = min(p.lo, q.lo), max(p.hi, q.hi)
        pos = min(p.pos, q.pos) if p.pos is not None and q.pos is not None else None
        exact = a.exact and p.exact and q.exact
        if d == I32:
            return kind, d, int(lo), int(hi), (lo if exact and lo >= 0 else None), exact
        r = _fint(d, lo, hi)
        return r and (kind, d, *r, pos, exact)
    if op in ("sum", "rmax", "rmin"):
        axis, keep = params
        kind = REDUCTIONS.get((a.kind, axis, keep))
        if kind is None or a.dtype == I1:
            return None
        fn = {"sum": "sum", "rmax": "max", "rmin": "min"}[op]
        d = reduction_type(a.dtype, fn)
        n = geo.count(a.kind, axis)
        if op == "sum":
            lo, hi = n * a.lo, n * a.hi
            pos = _shrink(a.pos * (1 - 2 * n * UNIT.get(d, 0)), d) if a.pos is not None else None
        else:
            lo, hi, pos = a.lo, a.hi, a.pos
        exact = a.exact and (d == I32 or op != "sum")
        if d == I32:
            lo, hi = _iint(lo, hi)
            return kind, d, lo, hi, (lo if exact and lo >= 0 else None), exact
        r = _fint(d, lo, hi)
        return r and (kind, d, *r, pos, exact)
    if op in ("expand", "bcast", "reshape"):
        (target, _style) = params
        return target, a.dtype, a.lo, a.hi, a.pos, a.exact
    if op == "copy":
        return a.kind, a.dtype, a.lo, a.hi, a.pos, a.exact
    raise AssertionError(op)


# ---------------------------------------------------------------------------- the generator

FLOAT_LITERALS = (0.5, 2.0, -1.0, 1.5, 0.25, 3.0, -0.75)  # all exact in fp16
INT_LITERALS = (1, 3, 7, -5, 100, 255, 2)


class Generator:
    def __init__(self, ch: Chooser, geo: Geometry):
        self.ch, self.geo = ch, geo
        self.nodes: list[Node] = []
        self.avail: list[Node] = []
        self.arrays: list[ArrayArg] = []
        self.phase = "main"
        self.ids = itertools.count()
        self.features: set[str] = set()

    # nodes ------------------------------------------------------------------------------
    def new(self, op, args=(), params=(), *, name=None, text=None, hidden=False, override=None,
            pos=None, visible=True) -> Node | None:
        """The node `op(args)`, added, or None where `infer` refuses it. `override`: an interval
        (and pos) the caller knows better than interval arithmetic (loop-carried values, softmax)."""
        got = infer(self.geo, op, args, params)
        if got is None:
            if override is None:
                return None
            kind = bkind(*(x.kind for x in args))
            got = (kind, args[0].dtype, 0, 0, None, False)
        kind, dtype, lo, hi, p, exact = got
        if override is not None:
            lo, hi = override
            p = pos
        if p is not None and p < 0:  # lower bounds are for positivity (denominators, logs): >= 0 or none
            p = None
        node = Node(name or (f"_h{next(self.ids)}" if hidden else f"v{next(self.ids)}"), op, kind, dtype,
                    lo, hi, tuple(args), tuple(params), p, exact, text, hidden, self.phase)
        self.nodes.append(node)
        if not hidden and visible:
            self.avail.append(node)
        return node

    def leaf(self, op, kind, dtype, lo, hi, params=(), text="", pos=None, exact=True, name=None) -> Node:
        node = Node(name or f"v{next(self.ids)}", op, kind, dtype, lo, hi, (), tuple(params), pos, exact, text,
                    False, self.phase)
        self.nodes.append(node)
        self.avail.append(node)
        return node

    def pick(self, pred, recent=True):
        pool = [n for n in self.avail if pred(n)]
        if not pool:
            return None
        if recent and len(pool) > 2 and self.ch.chance(0.7):
            pool = pool[-3:]
        return self.ch.choice(pool)

    def numeric(self, n):
        return n.dtype != I1

    # leaves -----------------------------------------------------------------------------
    def array(self, shape, dtype) -> ArrayArg:
        if dtype in FLOATS:
            values = self.ch.choice(["uniform", "quarters"])
        else:
            values = "full" if self.ch.chance(0.15) else "small"
        arr = ArrayArg(f"{'abcdefgh'[len(self.arrays)]}", shape, dtype, values)
        self.arrays.append(arr)
        return arr

    def load(self, shape, kind, dtype):
        arr = self.array(shape, dtype)
        if dtype in FLOATS:
            other = self.ch.choice((0.0, 1.0, -2.0, 0.5))
            lo, hi = -INPUT_RANGE, INPUT_RANGE
        else:
            other = self.ch.choice((0, 1, -3, 7))
            lo, hi = (INT_MIN, INT_MAX) if arr.values == "full" else (-INT_RANGE, INT_RANGE)
        lo, hi = min(lo, other), max(hi, other)
        g = self.geo
        if g.structure == "flat":
            ptr, mask = "offs", "mask"
        else:
            ptr, mask = {"RC": ("offs", "mask"), "1C": ("c[None, :]", "cmask[None, :]"), "C": ("c", "cmask"),
                         "R": ("r", "rmask"), "R1": ("r[:, None]", "rmask[:, None]")}[kind]
        text = (f"kl.load({arr.name}_ptr + {ptr}, mask={mask}, other={other!r})" if g.masked
                else f"kl.load({arr.name}_ptr + {ptr})")
        self.features.add(f"load:{kind}:{dtype}")
        return self.leaf("load", kind, dtype, lo, hi, params=(arr.name, kind, other), text=text)

    def index_leaves(self, which):
        g = self.geo
        if g.structure == "flat":
            self.leaf("index", "C", I32, 0, g.programs * g.BC - 1, params=("c", "C"), text="offs", pos=0)
            self.leaf("maskleaf", "C", I1, 0, 1, params=("c", "C"), text="mask")
            return
        if "r" in which:
            self.leaf("index", "R1", I32, 0, g.ntr * g.BR - 1, params=("r", "R1"), text="r[:, None]", pos=0)
            self.leaf("maskleaf", "R1", I1, 0, 1, params=("r", "R1"), text="rmask[:, None]")
        if "c" in which:
            hi = (g.trips if g.structure == "loop" else g.ntc) * g.BC - 1
            self.leaf("index", "1C", I32, 0, hi, params=("c", "1C"), text="c[None, :]", pos=0)
            self.leaf("maskleaf", "1C", I1, 0, 1, params=("c", "1C"), text="cmask[None, :]")
        if "r" in which and "c" in which:
            self.leaf("maskleaf", "RC", I1, 0, 1, params=("rc", "RC"), text="mask")

    def scalar_leaves(self):
        if self.ch.chance(0.5):
            self.leaf("arg", "S", F32, -INPUT_RANGE, INPUT_RANGE, params=("s",), text="s")
        if self.ch.chance(0.3):
            self.leaf("arg", "S", I32, -50, 50, params=("q",), text="q")

    def constant(self, kind):
        dtype = self.ch.choice([F32, I32, F16, F64])
        value = self.ch.choice(FLOAT_LITERALS + (0.0,)) if dtype in FLOATS else self.ch.choice(INT_LITERALS + (0,))
        text = (f"kl.zeros({SHAPE_TEXT[kind]}, {kl_dtype(dtype)})" if value == 0
                else f"kl.full({SHAPE_TEXT[kind]}, {value!r}, {kl_dtype(dtype)})")
        self.features.add("constant")
        return self.leaf("full", kind, dtype, value, value, params=(value,), text=text,
                         pos=value if value >= 0 else None)

    # growing the DAG ----------------------------------------------------------------------
    FAMILIES = {"arith": 6, "literal": 2, "div": 1.5, "intdiv": 1, "bitwise": 1.2, "shift": 0.8, "unary": 2.5,
                "math": 3, "cast": 2, "where": 2.5, "reduce": 3, "shape": 2, "fma": 0.6, "clamp": 0.5,
                "softmax": 0.6, "sigmoid": 0.6}

    def grow(self, count: int):
        for _ in range(count):
            for _attempt in range(8):
                family = self.ch.weighted(self.FAMILIES)
                if self.family(family):
                    self.features.add(f"family:{family}")
                    break

    def family(self, family: str) -> bool:
        ch = self.ch
        num = self.numeric
        if family == "arith":
            op = ch.choice(["add", "sub", "mul", "max", "min"])
            a = self.pick(num)
            b = self.pick(lambda n: num(n) and bkind(a.kind, n.kind) is not None, recent=False) if a else None
            return b is not None and self.op(op, a, b)
        if family == "literal":
            a = self.pick(num)
            if a is None:
                return False
            op = ch.choice(["add", "sub", "mul", "max", "min"])
            lit = Lit(ch.choice(FLOAT_LITERALS) if a.dtype in FLOATS or ch.chance(0.3) else ch.choice(INT_LITERALS))
            return self.op(op, a, lit)
        if family == "div":
            a = self.pick(num)
            if a is None:
                return False
            den = self.pick(lambda n: num(n) and n.pos is not None and n.pos >= 0.25 and
                            bkind(a.kind, n.kind) is not None, recent=False)
            if den is None or ch.chance(0.5):
                b = self.pick(lambda n: num(n) and bkind(a.kind, n.kind) is not None, recent=False)
                den = self.guard_positive(b) if b is not None else None
            return den is not None and self.op("div", a, den)
        if family == "intdiv":
            a = self.pick(lambda n: n.dtype == I32)
            if a is None:
                return False
            if ch.chance(0.4):
                den = Lit(ch.choice((3, 7, 1, 16, 5)))
            else:
                b = self.pick(lambda n: n.dtype == I32 and n.exact and bkind(a.kind, n.kind) is not None, recent=False)
                if b is None:
                    return False
                masked = self.new("and", (b, Lit(15)))
                den = masked and self.new("add", (masked, Lit(1)))
                if den is None:
                    return False
            return self.op(ch.choice(["floordiv", "mod"]), a, den)
        if family == "bitwise":
            a = self.pick(lambda n: n.dtype == I32)
            if a is None:
                return False
            if ch.chance(0.3):
                b = Lit(ch.choice((255, 1023, 7, -16)))
            else:
                b = self.pick(lambda n: n.dtype == I32 and bkind(a.kind, n.kind) is not None, recent=False)
            return b is not None and self.op(ch.choice(["and", "or", "xor"]), a, b)
        if family == "shift":
            a = self.pick(lambda n: n.dtype == I32)
            return a is not None and self.op(ch.choice(["shl", "shr"]), a, params=(ch.integer(1, 5),))
        if family == "unary":
            a = self.pick(num)
            ops = ["neg", "abs", "pow2", "pow3"] + (["invert"] if a is not None and a.dtype == I32 else [])
            return a is not None and self.op(ch.choice(ops), a)
        if family == "math":
            a = self.pick(lambda n: n.dtype in FLOATS)
            if a is None:
                return False
            op = ch.choice(MATH)
            if op in ("log", "log2", "rsqrt") and (a.pos is None or a.pos < 0.25):
                a = self.guard_positive(a)
            elif op == "sqrt" and a.pos is None:
                a = self.new("abs", (a,))
            return a is not None and self.op(op, a)
        if family == "cast":
            a = self.pick(lambda n: True)
            if a is None:
                return False
            targets = [d for d in (F16, F32, F64, I32) if d != a.dtype]
            return self.op("cast", a, params=(ch.choice(targets),))
        if family == "where":
            return self.where()
        if family == "reduce":
            a = self.pick(lambda n: num(n) and n.kind not in ("S", "L"))
            if a is None:
                return False
            options = [(axis, keep) for (k, axis, keep) in REDUCTIONS if k == a.kind]
            if not options:
                raise AssertionError(f"no reduction of {a.kind}")
            axis, keep = ch.choice(options)
            fn = ch.choice(["sum", "rmax", "rmin"])
            if self.geo.masked and a.kind == "RC" and ch.chance(0.35):
                a = self.mask_fill(a, fn)
                if a is None:
                    return False
            node = self.new(fn, (a,), (axis, keep))
            if node is not None:
                self.features.add(f"reduce:{fn}:{a.kind}:axis{axis}{':keep' if keep else ''}")
            return node is not None
        if family == "shape":
            a = self.pick(lambda n: n.kind in ("R", "C", "R1", "1C", "S"))
            if a is None:
                return False
            return self.reshape(a)
        if family == "fma":
            fl = lambda n: n.dtype in FLOATS  # noqa: E731
            a = self.pick(fl)
            b = a and self.pick(lambda n: fl(n) and bkind(a.kind, n.kind) is not None, recent=False)
            c = b and self.pick(lambda n: fl(n) and bkind(a.kind, b.kind, n.kind) is not None, recent=False)
            if c is None:
                return False
            return self.op("fma", a, b, c)
        if family == "clamp":
            a = self.pick(lambda n: n.dtype in FLOATS)
            if a is None:
                return False
            lo, hi = sorted(ch.choice([(-1.0, 1.0), (0.0, 2.0), (-0.5, 0.25)]))
            inner = self.new("max", (a, Lit(lo)), hidden=True)
            node = inner and self.new("min", (inner, Lit(hi)), text=f"kl.clamp({a.name}, {lo!r}, {hi!r})")
            if node:
                self.features.add("op:clamp")
            return node is not None
        if family == "sigmoid":
            a = self.pick(lambda n: n.dtype in FLOATS)
            if a is None:
                return False
            neg = self.new("neg", (a,), hidden=True)
            ex = neg and self.new("exp", (neg,), hidden=True)
            den = ex and self.new("add", (Lit(1), ex), hidden=True)
            node = den and self.new("div", (Lit(1), den), text=f"kl.sigmoid({a.name})")
            if node:
                self.features.add("op:sigmoid")
            return node is not None
        if family == "softmax":
            return self.softmax()
        raise AssertionError(family)

    def op(self, op, *args, params=()) -> bool:
        node = self.new(op, args, params)
        if node is not None:
            self.features.add(f"op:{op}" + (f":{params[0]}" if op == "cast" else ""))
            if op == "cast":
                self.features.add(f"cast:{args[0].dtype}->{params[0]}")
            if len({a.kind for a in args} - {"L", "S"}) > 1:
                self.features.add("broadcast:implicit")
            if node.dtype in FLOATS and any(a.dtype not in (node.dtype, LIT_F, LIT_I, I1) for a in args):
                self.features.add("promotion")
        return node is not None

    def guard_positive(self, b):
        """`kl.abs(b) + c`: >= c on every target (a denominator, or log's argument)."""
        if b.dtype == I1:
            return None
        ab = self.new("abs", (b,))
        return ab and self.new("add", (ab, Lit(self.ch.choice((0.5, 1.0, 0.25)))))

    def mask_fill(self, a, fn):
        """`kl.where(mask, a, identity)`: the padding lanes left out of a reduction."""
        m = max(abs(a.lo), abs(a.hi), 1.0)
        big = 2.0 ** math.ceil(math.log2(m + 1))
        fill = {"sum": 0, "rmax": -big, "rmin": big}[fn]
        fill = float(fill) if a.dtype in FLOATS else min(max(int(fill), INT_MIN), INT_MAX)  # an int32 literal
        mask = self.pick(lambda n: n.op == "maskleaf" and n.kind == "RC", recent=False)
        if mask is None:
            return None
        self.features.add("mask:fill-before-reduce")
        return self.new("where", (mask, a, Lit(fill)))

    def reshape(self, a) -> bool:
        g = self.geo
        ch = self.ch
        if g.structure == "flat":
            if a.kind != "S":
                return False
            node = self.new("bcast", (a,), ("C", "broadcast_to"))
        elif a.kind == "R":
            style = ch.choice(["index", "expand_dims"])
            node = self.new("expand", (a,), ("R1", style))
        elif a.kind == "C":
            style = ch.choice(["index", "expand_dims"])
            node = self.new("expand", (a,), ("1C", style))
        elif a.kind in ("R1", "1C") and ch.chance(0.3):
            node = self.new("reshape", (a,), ("R" if a.kind == "R1" else "C", "reshape"))
        else:
            node = self.new("bcast", (a,), ("RC", "broadcast_to"))
        if node is not None:
            self.features.add(f"shape:{node.op}:{a.kind}->{node.kind}")
        return node is not None

    def condition(self, kind_hint=None):
        ch = self.ch
        if ch.chance(0.25):
            c = self.pick(lambda n: n.dtype == I1, recent=False)
            if c is not None:
                return c
        a = self.pick(self.numeric)
        if a is None:
            return None
        if ch.chance(0.4):
            b = Lit(ch.choice((0.0, 0.5, -1.0)) if a.dtype in FLOATS else ch.choice((0, 3, -7)))
        else:
            b = self.pick(lambda n: self.numeric(n) and bkind(a.kind, n.kind) is not None, recent=False)
        pred = ch.choice(["<", ">", "<=", ">=", "==", "!="])
        c = self.new("cmp", (a, b), (pred,))
        if c is not None and ch.chance(0.25):
            other = self.pick(lambda n: n.dtype == I1 and n is not c and bkind(c.kind, n.kind) is not None,
                              recent=False)
            if other is not None:
                c = self.new(ch.choice(["land", "lor"]), (c, other)) or c
            elif ch.chance(0.5):
                c = self.new("lnot", (c,)) or c
        return c

    def where(self) -> bool:
        ch = self.ch
        c = self.condition()
        if c is None:
            return False
        p = self.pick(lambda n: self.numeric(n) and bkind(c.kind, n.kind) is not None)
        if p is None:
            return False
        if ch.chance(0.3):
            q = Lit(ch.choice(FLOAT_LITERALS) if p.dtype in FLOATS else ch.choice(INT_LITERALS))
        else:
            q = self.pick(lambda n: self.numeric(n) and bkind(c.kind, p.kind, n.kind) is not None, recent=False)
        if q is None:
            return False
        if ch.chance(0.5):
            p, q = q, p
        node = self.new("where", (c, p, q))
        if node is not None:
            self.features.add("where:" + ("mask" if c.op == "maskleaf" else "data"))
        return node is not None

    def softmax(self) -> bool:
        """`kl.softmax(a)` (along axis 0) or `kl.softmax(a, dim=1, keep_dims=True)`, evaluated as
        kdsl defines it: exp(a - max) / sum(exp(a - max)); the sum is >= 1 (max's own term)."""
        g = self.geo
        a = self.pick(lambda n: n.dtype in FLOATS and n.kind in (("C",) if g.structure == "flat" else ("RC",)))
        if a is None:
            return False
        dim1 = g.structure != "flat" and self.ch.chance(0.5)
        # along axis 0 without keep_dims, kdsl broadcasts the (BC,) max against (BR, BC) along the trailing
        # axis: the same values as keep_dims=True, which is what the (unprinted) parts evaluate
        axis, keep = (1, True) if dim1 else (0, g.structure != "flat")
        mx = self.new("rmax", (a,), (axis, keep), hidden=True)
        if mx is None:
            return False
        span = a.hi - a.lo
        sh = self.new("sub", (a, mx), hidden=True, override=(-span * 1.01 - 1e-3, 1e-3))
        ex = self.new("exp", (sh,), hidden=True, override=(0.0, 1.01))
        n = g.count(a.kind, axis)
        total = self.new("sum", (ex,), (axis, keep), hidden=True, override=(0.5, n * 1.01 + 1), pos=0.5)
        text = f"kl.softmax({a.name}, dim=1, keep_dims=True)" if dim1 else f"kl.softmax({a.name})"
        node = self.new("div", (ex, total), text=text, override=(0.0, 1.01), pos=None)
        self.features.add("op:softmax:dim1" if dim1 else "op:softmax:dim0")
        return node is not None

    def fit(self, node, kind, dtype):
        """A node of `kind` (or one that broadcasts into it) and of a type that `dtype` absorbs
        (computing in `dtype`), made from `node` by reductions, expansions and a cast; or None."""
        g = self.geo
        if bkind(kind, node.kind) != kind:
            k = node.kind
            fn = self.ch.choice(["sum", "rmax", "rmin"])
            if k == "R" and kind in ("RC", "R1"):
                node = self.new("expand", (node,), ("R1", "index"))
            elif k == "C" and kind in ("RC", "1C"):
                node = self.new("expand", (node,), ("1C", "index"))
            elif k == "R1" and kind == "R":
                node = self.new("reshape", (node,), ("R", "reshape"))
            elif k == "1C" and kind == "C":
                node = self.new("reshape", (node,), ("C", "reshape"))
            elif k == "RC" and kind in ("R1", "R", "1C", "C"):
                axis, keep = {"R1": (1, True), "R": (1, False), "1C": (0, True), "C": (0, False)}[kind]
                node = self.new(fn, (node,), (axis, keep)) or self.new("rmax", (node,), (axis, keep))
            else:
                node = self.new(fn, (node,), (None, False)) or self.new("rmax", (node,), (None, False))
            if node is None or bkind(kind, node.kind) != kind:
                return None
        if node.dtype == I1 or compute_type(dtype, node.dtype, "add") != dtype:
            node = self.new("cast", (node,), (dtype,))
        return node

    # outputs -------------------------------------------------------------------------------
    def output(self, node, phase) -> Output:
        dtype = node.dtype
        if dtype == I1:
            raise AssertionError("bool outputs are cast first")
        if dtype in FLOATS and self.ch.chance(0.2):
            choices = [d for d in FLOATS if d != dtype and _fits(node, d)]
            if choices:
                dtype = self.ch.choice(choices)
                self.features.add("store:convert")
        self.features.add(f"store:{phase}:{node.kind}")
        return Output(f"o{next(self.ids)}", node, dtype, phase)

    def sinks(self, phases):
        used = {id(a) for n in self.nodes for a in n.args}
        return [n for n in self.avail if n.phase in phases and n.dtype != I1 and id(n) not in used
                and n.op not in ("load", "index", "arg", "full", "maskleaf")]

    def choose_outputs(self, phases, store_phase, at_least_one=True):
        cands = [n for n in self.avail if n.phase in phases and n.dtype != I1
                 and n.op not in ("maskleaf",)]
        outs = []
        sinks = self.sinks(phases)
        if sinks:
            outs.append(sinks[-1])
        elif cands and at_least_one:
            outs.append(cands[-1])
        for _ in range(self.ch.integer(0, 2)):
            pool = sinks + cands
            n = self.ch.choice(pool) if pool else None
            if n is not None and n not in outs:
                outs.append(n)
        return [self.output(n, store_phase) for n in outs]


# --------------------------------------------------------------------------------- strategies

def geometry(ch: Chooser, structure: str) -> Geometry:
    num_warps = ch.choice([4, 1, 2])
    if structure == "flat":
        BC = ch.choice([32, 128, 512, 16, 64])
        masked = ch.chance(0.85)
        n = ch.integer(1, 3 * BC) if masked else BC * ch.integer(1, 3)
        return Geometry("flat", 1, n, 1, BC, masked, None, num_warps)
    BR = ch.choice([4, 1, 2, 8, 16])
    BC = ch.choice([16, 8, 32, 4, 64, 2])
    while BR * BC > 512:
        BC //= 2
    masked = ch.chance(0.85)
    if structure == "tile":
        rows = ch.integer(1, 3 * BR) if masked else BR * ch.integer(1, 3)
        cols = ch.integer(1, 3 * BC) if masked else BC * ch.integer(1, 3)
        return Geometry("tile", rows, cols, BR, BC, masked, None, num_warps)
    rows = ch.integer(1, 3 * BR) if masked else BR * ch.integer(1, 2)
    cols = ch.integer(1, 4 * BC) if masked else BC * ch.integer(1, 4)
    loop = ch.choice(["step", "runtime", "constexpr", "static", "while"])
    return Geometry("loop", rows, cols, BR, BC, masked, loop, num_warps)


def generate(ch: Chooser, structures=("flat", "tile", "loop"), size: int = 8) -> KernelSpec:
    """A random kernel; `size` scales how many operations it has."""
    structure = ch.choice(structures)
    geo = geometry(ch, structure)
    gen = Generator(ch, geo)
    gen.features.update({f"structure:{structure}", "masked" if geo.masked else "unmasked",
                         f"num_warps:{geo.num_warps}"})
    if structure in ("flat", "tile"):
        leaf_dtypes = [F32, F32, F32, I32, I32, F16, F64]
        if structure == "flat":
            for _ in range(ch.integer(1, 3)):
                gen.load("vec", "C", ch.choice(leaf_dtypes))
            gen.index_leaves("c")
        else:
            for _ in range(ch.integer(1, 3)):
                gen.load("mat", "RC", ch.choice(leaf_dtypes))
            if ch.chance(0.6):
                gen.load("row", ch.choice(["1C", "C"]), ch.choice(leaf_dtypes))
            if ch.chance(0.6):
                gen.load("col", ch.choice(["R1", "R"]), ch.choice(leaf_dtypes))
            gen.index_leaves("rc")
            if ch.chance(0.2):
                gen.constant(ch.choice(["RC", "R1", "1C"]))
        gen.scalar_leaves()
        gen.grow(ch.integer(1, size))
        outputs = gen.choose_outputs(("main",), "main")
    else:
        outputs = loop_kernel(gen, size)
    nodes = _used(gen.nodes, outputs)
    # what the generator did (these parts always reach an output), and what the used nodes are
    kept = ("structure:", "masked", "unmasked", "num_warps:", "loop:", "carried:", "store:", "motif:")
    features = {f for f in gen.features if f.startswith(kept)} | node_features(nodes)
    return KernelSpec(geo, gen.arrays, nodes, outputs, frozenset(features))


def node_features(nodes: list[Node]) -> set[str]:
    """The features a kernel's (used) nodes exercise, for the long run's counts."""
    out = set()
    for n in nodes:
        if n.hidden:
            continue
        if n.dtype in FLOATS + (I32,):
            out.add(f"dtype:{n.dtype}")
        op = n.op
        if n.text is not None and n.text.startswith("kl.") and op not in ("load", "full"):
            out.add("op:" + n.text[3:n.text.index("(")] + (":dim1" if "dim=1" in n.text else ""))
        elif op == "load":
            out.add(f"load:{n.kind}:{n.dtype}" + (":other" if "other=" in (n.text or "") else ""))
        elif op in ("index", "maskleaf", "arg", "full", "carried", "copy"):
            out.add(f"leaf:{op}")
        elif op == "cast":
            out.add(f"cast:{n.args[0].dtype}->{n.params[0]}")
        elif op in ("sum", "rmax", "rmin"):
            axis, keep = n.params
            out.add(f"reduce:{op.lstrip('r')}:{n.args[0].kind}:axis{axis}" + (":keep" if keep else ""))
        elif op == "where":
            cond = n.args[0]
            out.add("where:" + ("mask" if getattr(cond, "op", "") == "maskleaf" else "data"))
            if isinstance(n.args[2], Lit) and n.args[0].op == "maskleaf":
                out.add("mask:fill")
        elif op in ("expand", "bcast", "reshape"):
            out.add(f"shape:{op}:{n.args[0].kind}->{n.kind}")
        elif op == "cmp":
            out.add(f"cmp:{n.params[0]}")
        else:
            out.add(f"op:{op}:{'float' if n.dtype in FLOATS else 'int'}" if op in (
                "add", "sub", "mul", "max", "min", "neg", "abs", "pow2", "pow3") else f"op:{op}")
        kinds = {a.kind for a in n.args} - {"L", "S"}
        if len(kinds) > 1 and op not in ("expand", "bcast", "reshape"):
            out.add("broadcast:implicit")
        if n.dtype in FLOATS and op != "cast" and any(a.dtype in FLOATS + (I32,) and a.dtype != n.dtype
                                                       for a in n.args):
            out.add("promotion")
    return out


def loop_kernel(gen: Generator, size: int) -> list[Output]:
    ch, geo = gen.ch, gen.geo
    gen.features.add(f"loop:{geo.loop}")
    leaf_dtypes = [F32, F32, F32, I32, I32, F16, F64]
    # before the loop: row-wise values
    gen.phase = "pre"
    if ch.chance(0.5):
        gen.load("col", ch.choice(["R1", "R"]), ch.choice(leaf_dtypes))
    gen.index_leaves("r")
    gen.scalar_leaves()
    if ch.chance(0.2):
        gen.constant(ch.choice(["R1", "RC"]))
    gen.grow(ch.integer(0, 2))
    pre_nodes = list(gen.avail)
    # accumulators, initialised before the loop
    accs = []
    for i in range(ch.integer(1, 2)):
        kind = ch.choice(["RC", "R1", "R", "S", "1C"])
        dtype = ch.choice([F32, F32, I32, F64])
        init = None
        same = [n for n in pre_nodes if n.kind == kind and n.dtype == dtype and n.op != "full"]
        name = f"acc{i}"
        if same and ch.chance(0.3):
            src = ch.choice(same)
            init = gen.new("copy", (src,), name=name, override=(src.lo, src.hi), pos=src.pos, visible=False)
            init.dtype, init.kind = dtype, kind
            gen.features.add("carried:init-from-value")
        else:
            value = 0.0 if dtype in FLOATS else 0
            if ch.chance(0.3):
                value = ch.choice(FLOAT_LITERALS) if dtype in FLOATS else ch.choice(INT_LITERALS)
            if kind == "S":
                text = f"kl.full((), {value!r}, {kl_dtype(dtype)})" if ch.chance(0.5) else None
                if text is None:
                    text = "s * 0.0" if dtype == F32 else f"kl.zeros((), {kl_dtype(dtype)})"
                    value = 0.0 if dtype in FLOATS else 0
                    if text == "s * 0.0":
                        gen.features.add("carried:scalar-from-arg")
            else:
                text = (f"kl.zeros({SHAPE_TEXT[kind]}, {kl_dtype(dtype)})" if value == 0
                        else f"kl.full({SHAPE_TEXT[kind]}, {value!r}, {kl_dtype(dtype)})")
            init = Node(name, "full", kind, dtype, value, value, (), (value,), value if value >= 0 else None,
                        True, text, False, "pre")
            gen.nodes.append(init)
        accs.append(init)
    motif = ch.chance(0.3)
    if motif:
        low = float(_to(F32, -1e30))
        m_init = Node("m_i", "full", "R1", F32, low, low, (), (-1e30,), None, True,
                      "kl.full((BR, 1), -1e30, kl.float32)", False, "pre")
        l_init = Node("l_i", "full", "R1", F32, 0.0, 0.0, (), (0.0,), 0.0, True,
                      "kl.zeros((BR, 1), kl.float32)", False, "pre")
        gen.nodes += [m_init, l_init]
    # the loop body
    gen.phase = "loop"
    for _ in range(ch.integer(1, 2)):
        gen.load("mat", "RC", ch.choice(leaf_dtypes))
    if ch.chance(0.4):
        gen.load("row", ch.choice(["1C", "C"]), ch.choice(leaf_dtypes))
    gen.index_leaves("rc")
    gen.grow(ch.integer(1, max(1, size - 2)))
    body_nodes = [n for n in gen.avail if n.phase == "loop"]
    finals = []
    T = geo.trips
    for acc in accs:
        final = None
        for cand in sorted(body_nodes, key=lambda n: -body_nodes.index(n))[:4] + body_nodes[:1]:
            if cand.dtype == I1:
                continue
            e = gen.fit(cand, acc.kind, acc.dtype)
            if e is not None:
                final = accumulate(gen, acc, e, T)
                if final is not None:
                    break
        if final is None:  # a fresh load always fits
            e = gen.fit(gen.load("mat", "RC", acc.dtype), acc.kind, acc.dtype)
            final = accumulate(gen, acc, e, T) if e is not None else None
        if final is not None:
            finals.append(final)
    if motif:
        finals += online_softmax(gen, m_init, l_init)
    in_loop = []
    if ch.chance(0.4):
        cands = [n for n in gen.avail if n.phase == "loop" and n.dtype != I1 and n.kind in ("RC", "C", "1C")
                 and n.op not in ("maskleaf",)]
        if cands:
            in_loop.append(gen.output(ch.choice(cands), "loop"))
            gen.features.add("store:in-loop")
    # after the loop: the accumulators' final values, with the values from before the loop
    gen.phase = "post"
    gen.avail = [n for n in gen.avail if n.phase == "pre"]
    for kind, dtype, name, lo, hi, pos in finals:
        gen.leaf("carried", kind, dtype, lo, hi, name=name, text=name, pos=pos, exact=False)
    gen.grow(ch.integer(0, 3))
    outs = gen.choose_outputs(("post",), "post")
    # every accumulator is checked directly too
    for kind, dtype, name, lo, hi, pos in finals:
        node = next(n for n in gen.avail if n.name == name and n.op == "carried")
        if all(o.node is not node for o in outs):
            outs.append(gen.output(node, "post"))
    return in_loop + outs


def accumulate(gen: Generator, acc: Node, e: Node, T: int):
    """`acc = update(acc, e)` at every iteration; the interval of the accumulator over the whole
    loop follows from the form of the update."""
    ch = gen.ch
    d = acc.dtype
    forms = ["add", "max", "min"] + (["decay"] if d in FLOATS else ["xor"])
    form = ch.choice(forms)
    il, ih = acc.lo, acc.hi
    if form == "add":
        lo, hi = il + T * min(e.lo, 0), ih + T * max(e.hi, 0)
    elif form in ("max", "min"):
        lo, hi = min(il, e.lo), max(ih, e.hi)
    elif form == "decay":
        lo, hi = min(il, 2 * e.lo), max(ih, 2 * e.hi)
    else:
        k = max(_bits(acc), _bits(e))
        lo, hi = (0, 2**k - 1) if il >= 0 and e.lo >= 0 else (-(2**k), 2**k - 1)
    if d in FLOATS:
        r = _fint(d, lo, hi)
        if r is None:
            if form != "add":
                return None
            form, (lo, hi) = "max", (min(il, e.lo), max(ih, e.hi))
            r = _fint(d, lo, hi)
            if r is None:
                return None
        lo, hi = r
    else:
        lo, hi = _iint(lo, hi)
    # lower bounds: `pos` holds at every iteration (the initial value included), `post` after the loop
    pos = post = None
    if form == "max":
        pos = acc.pos
        post = max((p for p in (acc.pos, e.pos) if p is not None), default=None)
    elif form in ("add", "min", "decay") and acc.pos is not None and e.pos is not None:
        # add: init + (terms >= 0); min: the least of them; decay: x / 2 + e >= m / 2 + m / 2 for m = min
        pos = post = _shrink(min(acc.pos, e.pos), d)
    name = acc.name
    cin = Node(name, "carried", acc.kind, d, lo, hi, (acc,), (), pos, False, None, True, "loop")
    gen.nodes.append(cin)
    gen.features.add(f"carried:{form}:{acc.kind}")
    if form == "decay":
        half_range = _fint(d, lo / 2, hi / 2) or (lo / 2, hi / 2)
        half = gen.new("mul", (cin, Lit(0.5)), hidden=True, override=half_range,
                       pos=None if pos is None else pos / 2)
        upd = gen.new("add", (half, e), name=name, text=f"{name} * 0.5 + {e.name}", override=(lo, hi), pos=post,
                      visible=False)
    else:
        op = {"add": "add", "max": "max", "min": "min", "xor": "xor"}[form]
        text = {"add": f"{name} + {e.name}", "max": f"kl.maximum({name}, {e.name})",
                "min": f"kl.minimum({name}, {e.name})", "xor": f"{name} ^ {e.name}"}[form]
        upd = gen.new(op, (cin, e), name=name, text=text, override=(lo, hi), pos=post, visible=False)
    upd.dtype, upd.kind = d, acc.kind
    upd.params = ("update",)
    return acc.kind, d, name, lo, hi, post


def online_softmax(gen: Generator, m_init: Node, l_init: Node):
    """The flash-attention recurrence over the column tiles of an fp32 value `a`:
    m' = max(m, rowmax(a)); l' = l * exp(m - m') + rowsum(exp(a - m')); after the loop
    l >= 1 and log(l) + m is the row's logsumexp."""
    a = gen.pick(lambda n: n.phase == "loop" and n.kind == "RC" and n.dtype in FLOATS, recent=True)
    if a is None:
        return []
    if a.dtype != F32:
        a = gen.new("cast", (a,), (F32,))
        if a is None:
            return []
    gen.features.add("motif:online-softmax")
    BC = gen.geo.BC
    span = a.hi - a.lo
    m_in = Node("m_i", "carried", "R1", F32, -2e30, a.hi, (m_init,), (), None, False, None, True, "loop")
    l_in = Node("l_i", "carried", "R1", F32, 0.0, 1e5, (l_init,), (), 0.0, False, None, True, "loop")
    gen.nodes += [m_in, l_in]
    t = gen.new("rmax", (a,), (1, True), visible=False)
    m_new = gen.new("max", (m_in, t), override=(a.lo - 1e-3, a.hi + 1e-3), visible=False)
    d_old = gen.new("sub", (m_in, m_new), override=(-2e30, 1e-3), visible=False)
    alpha = gen.new("exp", (d_old,), override=(0.0, 1.01), visible=False)
    sh = gen.new("sub", (a, m_new), override=(-span * 1.01 - 1e-3, 1e-3), visible=False)
    p = gen.new("exp", (sh,), override=(0.0, 1.01), visible=False)
    ps = gen.new("sum", (p,), (1, True), override=(0.0, BC * 1.01), visible=False)
    T = gen.geo.trips
    hi = T * BC * 1.01 + 1
    scaled = gen.new("mul", (l_in, alpha), override=(0.0, hi), visible=False)
    l_new = gen.new("add", (scaled, ps), name="l_i", override=(0.0, hi), pos=0.5, visible=False)
    l_new.params = ("update",)
    m_copy = gen.new("copy", (m_new,), name="m_i", override=(a.lo - 1e-3, a.hi + 1e-3), visible=False)
    m_copy.params = ("update",)
    return [("R1", F32, "m_i", a.lo - 1e-3, a.hi + 1e-3, None), ("R1", F32, "l_i", 0.5, hi, 0.5)]


def _used(nodes: list[Node], outputs: list[Output]) -> list[Node]:
    """The nodes the outputs and the loop's updates need, in order."""
    need: set[int] = set()
    by_name: dict[str, list[Node]] = {}
    for n in nodes:
        by_name.setdefault(n.name, []).append(n)

    def visit(n):
        if isinstance(n, Lit) or id(n) in need:
            return
        need.add(id(n))
        for a in n.args:
            visit(a)
        if n.op == "carried":  # a carried value needs its updates (and so what they need)
            for other in by_name[n.name]:
                visit(other)

    for o in outputs:
        visit(o.node)
    return [n for n in nodes if id(n) in need]


@st.composite
def kernels(draw, structures=("flat", "tile", "loop"), size: int = 8) -> KernelSpec:
    """The hypothesis strategy: a random well-typed kernel (see `generate`)."""
    return generate(DrawChooser(draw), structures, size)


# --------------------------------------------------------------------------------- the source

HEADER = "import kdsl\nimport kdsl.language as kl\n\n\n@kdsl.kernel\n"


def _expr(n: Node) -> str:
    if n.text is not None:
        return n.text
    a = [x.name for x in n.args]
    op = n.op
    binary = {"add": "{0} + {1}", "sub": "{0} - {1}", "mul": "{0} * {1}", "div": "{0} / {1}",
              "floordiv": "{0} // {1}", "mod": "{0} % {1}", "and": "{0} & {1}", "or": "{0} | {1}",
              "xor": "{0} ^ {1}", "max": "kl.maximum({0}, {1})", "min": "kl.minimum({0}, {1})",
              "land": "{0} & {1}", "lor": "{0} | {1}", "fma": "kl.fma({0}, {1}, {2})",
              "where": "kl.where({0}, {1}, {2})", "neg": "-{0}", "abs": "kl.abs({0})", "invert": "~{0}",
              "lnot": "~{0}", "pow2": "{0} ** 2", "pow3": "{0} ** 3", "copy": "{0}"}
    if op in binary:
        return binary[op].format(*a)
    if op in MATH:
        return f"kl.{op}({a[0]})"
    if op in ("shl", "shr"):
        return f"{a[0]} {'<<' if op == 'shl' else '>>'} {n.params[0]}"
    if op == "cast":
        return f"{a[0]}.to({kl_dtype(n.params[0])})"
    if op == "cmp":
        return f"{a[0]} {n.params[0]} {a[1]}"
    if op in ("sum", "rmax", "rmin"):
        axis, keep = n.params
        fn = {"sum": "sum", "rmax": "max", "rmin": "min"}[op]
        if axis is None:
            return f"kl.{fn}({a[0]})"
        return f"kl.{fn}({a[0]}, axis={axis}" + (", keep_dims=True)" if keep else ")")
    if op == "expand":
        target, style = n.params
        if style == "index":
            return f"{a[0]}[:, None]" if target == "R1" else f"{a[0]}[None, :]"
        return f"kl.expand_dims({a[0]}, {1 if target == 'R1' else 0})"
    if op == "bcast":
        return f"kl.broadcast_to({a[0]}, {SHAPE_TEXT[n.params[0]]})"
    if op == "reshape":
        return f"kl.reshape({a[0]}, {SHAPE_TEXT[n.params[0]]})"
    raise AssertionError(op)


def _statements(nodes: list[Node], phase: str) -> list[str]:
    return [f"{n.name} = {_expr(n)}" for n in nodes if n.phase == phase and not n.hidden and n.op != "carried"]


def _store(geo: Geometry, o: Output) -> str:
    kind = o.node.kind
    s = geo.structure
    if kind == "S":
        ptr, mask = {"flat": "pid", "tile": "pid_r * kl.num_programs(1) + pid_c", "loop": "pid_r"}[s], None
    elif s == "flat":
        ptr, mask = "offs", "mask"
    elif s == "tile" or o.phase == "loop":
        ptr, mask = {"RC": ("offs", "mask"), "R": ("pid_c * rows + r", "rmask"),
                     "R1": ("pid_c * rows + r[:, None]", "rmask[:, None]"), "C": ("pid_r * cols + c", "cmask"),
                     "1C": ("pid_r * cols + c[None, :]", "cmask[None, :]")}[kind]
    else:
        ptr, mask = {"RC": ("r[:, None] * BC + kl.arange(0, BC)[None, :]", "rmask[:, None]"), "R": ("r", "rmask"),
                     "R1": ("r[:, None]", "rmask[:, None]"), "C": ("pid_r * BC + kl.arange(0, BC)", None),
                     "1C": ("pid_r * BC + kl.arange(0, BC)[None, :]", None)}[kind]
    if not geo.masked:
        mask = None
    return f"kl.store({o.name}_ptr + {ptr}, {o.node.name}" + (f", mask={mask})" if mask else ")")


def used_arrays(spec: KernelSpec) -> list[ArrayArg]:
    return [a for a in spec.arrays if any(n.op == "load" and n.params[0] == a.name for n in spec.nodes)]


def emit(spec: KernelSpec) -> str:
    geo = spec.geo
    ptrs = [f"{a.name}_ptr" for a in used_arrays(spec)]
    ptrs += [f"{o.name}_ptr" for o in spec.outputs]
    ind = "    "
    lines = []
    if geo.structure == "flat":
        lines.append(f"def fuzz({', '.join(ptrs)}, n, s, q, BC: kl.constexpr):")
        lines += [ind + "pid = kl.program_id(0)", ind + "offs = pid * BC + kl.arange(0, BC)", ind + "mask = offs < n"]
        lines += [ind + x for x in _statements(spec.nodes, "main")]
        lines += [ind + _store(geo, o) for o in spec.outputs]
    elif geo.structure == "tile":
        lines.append(f"def fuzz({', '.join(ptrs)}, rows, cols, s, q, BR: kl.constexpr, BC: kl.constexpr):")
        lines += [ind + x for x in (
            "pid_r = kl.program_id(0)", "pid_c = kl.program_id(1)", "r = pid_r * BR + kl.arange(0, BR)",
            "c = pid_c * BC + kl.arange(0, BC)", "rmask = r < rows", "cmask = c < cols",
            "mask = rmask[:, None] & cmask[None, :]", "offs = r[:, None] * cols + c[None, :]")]
        lines += [ind + x for x in _statements(spec.nodes, "main")]
        lines += [ind + _store(geo, o) for o in spec.outputs]
    else:
        lines.append(f"def fuzz({', '.join(ptrs)}, rows, cols, s, q, nt, BR: kl.constexpr, BC: kl.constexpr, "
                     "NT: kl.constexpr):")
        lines += [ind + "pid_r = kl.program_id(0)", ind + "r = pid_r * BR + kl.arange(0, BR)", ind + "rmask = r < rows"]
        lines += [ind + x for x in _statements(spec.nodes, "pre")]
        header, first = {
            "step": ("for k in range(0, cols, BC):", "c = k + kl.arange(0, BC)"),
            "runtime": ("for t in range(nt):", "c = t * BC + kl.arange(0, BC)"),
            "constexpr": ("for t in range(NT):", "c = t * BC + kl.arange(0, BC)"),
            "static": ("for t in kl.static_range(NT):", "c = t * BC + kl.arange(0, BC)"),
            "while": ("while k < cols:", "c = k + kl.arange(0, BC)"),
        }[geo.loop]
        if geo.loop == "while":
            lines.append(ind + "k = 0")
        lines.append(ind + header)
        body = [first, "cmask = c < cols", "mask = rmask[:, None] & cmask[None, :]",
                "offs = r[:, None] * cols + c[None, :]"]
        body += _statements(spec.nodes, "loop")
        body += [_store(geo, o) for o in spec.outputs if o.phase == "loop"]
        if geo.loop == "while":
            body.append("k += BC")
        lines += [2 * ind + x for x in body]
        lines += [ind + x for x in _statements(spec.nodes, "post")]
        lines += [ind + _store(geo, o) for o in spec.outputs if o.phase == "post"]
    return HEADER + "\n".join(lines) + "\n"


_modules = itertools.count()


def build(source: str, directory: str) -> kdsl.Kernel:
    """The kernel `fuzz` of `source`, written to a file of its own (kernels compile from their source)."""
    path = os.path.join(directory, f"fuzz_{os.getpid()}_{next(_modules)}.py")
    with open(path, "w") as f:
        f.write(source)
    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fuzz


# ---------------------------------------------------------------------------- the reference

class FuzzerError(AssertionError):
    """The generator or the reference broke one of its own invariants (a bug of the fuzzer)."""


@dataclass
class Val:
    v: np.ndarray  # float64, int64 (int32 values) or bool
    e: np.ndarray  # float64 bound; for bools, 1.0 where the value is ambiguous
    kind: str
    dtype: str


def _fix(e):
    return np.where(np.isnan(e), np.inf, e)


def _rnd(d, mag):
    return (UNIT[d] + REF) * mag + TINY[d]


def _math_rnd(d, mag):
    base = UNIT[F32] if d == F16 else UNIT[d]
    return (MATH_ULPS * 2 * base + (UNIT[F16] if d == F16 else 0.0) + 4 * REF) * mag + TINY[d]


def _to(d, z):
    return np.asarray(z, np.float64).astype(NUMPY[d]).astype(np.float64)


def _monotone(f, v, e, lo=-np.inf):
    fv = f(v)
    a = f(np.maximum(v - e, lo))
    b = f(np.maximum(v + e, lo))
    return _fix(np.maximum(np.abs(a - fv), np.abs(b - fv)))


def _wrap(x):
    return ((x + 2**31) % 2**32) - 2**31


def _crossing(x, ep):
    """The bound of a wrapping int32 result whose unwrapped value is x, known within ep."""
    return np.where(ep == 0, 0.0, np.where((x - ep < INT_MIN) | (x + ep > INT_MAX), np.inf, ep))


def _int_err(e):
    return np.where(np.isfinite(e), np.minimum(e, 2.0**62), 0).astype(np.int64)


def _tdiv(x, y):
    q = np.abs(x) // np.abs(y)
    return np.where((x < 0) ^ (y < 0), -q, q)


def convert(x: Val, d: str) -> Val:
    s = x.dtype
    if s == d:
        return x
    if s in (LIT_F, LIT_I):
        if d in FLOATS:
            return Val(_to(d, x.v), np.zeros(()), x.kind, d)
        return Val(np.asarray(x.v, np.int64), np.zeros(()), x.kind, d)
    if s == I1:
        return Val(x.v.astype(np.float64 if d in FLOATS else np.int64), x.e, x.kind, d)
    if s == I32:
        if d in FLOATS:
            v = x.v.astype(np.float64)
            return Val(_to(d, v), _monotone(lambda z: _to(d, z), v, x.e), x.kind, d)
        raise AssertionError(d)
    if d in FLOATS:
        if WIDTH[d] >= WIDTH[s]:
            return Val(x.v, x.e, x.kind, d)
        v = _to(d, x.v)
        return Val(v, _monotone(lambda z: _to(d, z), x.v, x.e) + REF * np.abs(v), x.kind, d)
    if d == I32:
        return Val(np.trunc(x.v).astype(np.int64), _monotone(np.trunc, x.v, x.e), x.kind, d)
    raise AssertionError((s, d))


def _aligned(x: Val, kind: str, programs: int):
    """x's arrays shaped to broadcast with a value of `kind` (a scalar's per-program axis first)."""
    v, e = x.v, np.broadcast_to(x.e, np.shape(x.v))
    if x.kind == "S" and kind not in ("S", "L"):
        nd = 2 if kind in TWO_D else 1
        shape = (programs,) + (1,) * nd
        v, e = v.reshape(shape), e.reshape(shape)
    return v, e


class Reference:
    """Evaluates a KernelSpec on given inputs, program by program at once."""

    def __init__(self, spec: KernelSpec, arrays: dict, scalars: dict):
        self.spec, self.geo, self.arrays, self.scalars = spec, spec.geo, arrays, scalars
        self.env: dict[str, Val] = {}
        g = self.geo
        P = g.programs
        p = np.arange(P)
        if g.structure == "flat":
            self.pid_r, self.pid_c = np.zeros(P, np.int64), p
            self.R = np.zeros((P, 1), np.int64)
        else:
            self.pid_r, self.pid_c = p // g.ntc, p % g.ntc
            self.R = self.pid_r[:, None] * g.BR + np.arange(g.BR)[None, :]
        self.set_tile(0)

    def set_tile(self, t: int):
        g = self.geo
        j = np.arange(g.BC)[None, :]
        self.C = (self.pid_c[:, None] * g.BC + j) if g.structure != "loop" else np.broadcast_to(t * g.BC + j,
                                                                                              (g.programs, g.BC))
        self.rvalid = self.R < (g.rows if g.structure != "flat" else 1)
        self.cvalid = self.C < g.cols

    # one node ---------------------------------------------------------------------------
    def value(self, a) -> Val:
        if isinstance(a, Lit):
            return Val(np.asarray(a.value), np.zeros(()), "L", a.dtype)
        return self.env[a.name]

    def run(self, node: Node):
        with np.errstate(all="ignore"):
            val = self.eval(node)
        if node.dtype in FLOATS and val.dtype in FLOATS:
            v = val.v
            if not (np.all(np.isfinite(v)) and np.all(v >= node.lo - 1e-9 * abs(node.lo)) and
                    np.all(v <= node.hi + 1e-9 * abs(node.hi))):
                raise FuzzerError(f"{node.name} = {_expr(node)}: values {v.min()}..{v.max()} outside "
                                      f"the static interval [{node.lo}, {node.hi}]")
            if node.pos is not None and not np.all(v >= node.pos):
                raise FuzzerError(f"{node.name}: a value below its lower bound {node.pos}")
        if node.dtype == I32 and val.dtype == I32 and not (np.all(val.v >= node.lo) and np.all(val.v <= node.hi)):
            raise FuzzerError(f"{node.name} = {_expr(node)}: ints outside [{node.lo}, {node.hi}]")
        if val.dtype != node.dtype or val.kind != node.kind:
            raise FuzzerError(f"{node.name}: evaluated as {val.kind} {val.dtype}, typed {node.kind} {node.dtype}")
        self.env[node.name] = val

    def eval(self, n: Node) -> Val:
        g, P = self.geo, self.geo.programs
        op = n.op
        if op == "load":
            name, kind, other = n.params
            arr = self.arrays[name]
            other_v = convert(Val(np.asarray(other), np.zeros(()), "L", LIT_F if isinstance(other, float) else LIT_I),
                              n.dtype).v
            R, C = np.minimum(self.R, g.rows - 1), np.minimum(self.C, g.cols - 1)
            if kind == "RC":
                vals, ok = arr[R[:, :, None], C[:, None, :]], self.rvalid[:, :, None] & self.cvalid[:, None, :]
            elif kind in ("1C", "C"):
                vals, ok = arr[C], self.cvalid
                if kind == "1C":
                    vals, ok = vals[:, None, :], ok[:, None, :]
            else:
                vals, ok = arr[R], self.rvalid
                if kind == "R1":
                    vals, ok = vals[:, :, None], ok[:, :, None]
            vals = vals.astype(np.float64 if n.dtype in FLOATS else np.int64)
            v = np.where(ok, vals, other_v)
            return Val(v, np.zeros(v.shape), kind, n.dtype)
        if op == "index":
            which, kind = n.params
            v = self.C if which == "c" else self.R
            v = {"C": v, "R": v, "R1": v[:, :, None], "1C": v[:, None, :]}[kind].astype(np.int64)
            return Val(v, np.zeros(v.shape), kind, I32)
        if op == "maskleaf":
            which, kind = n.params
            v = {"C": self.cvalid, "R1": self.rvalid[:, :, None], "1C": self.cvalid[:, None, :],
                 "RC": self.rvalid[:, :, None] & self.cvalid[:, None, :]}[kind]
            return Val(v, np.zeros(v.shape), kind, I1)
        if op == "arg":
            v = np.full(P, self.scalars[n.params[0]], np.float64 if n.dtype == F32 else np.int64)
            return Val(v, np.zeros(P), "S", n.dtype)
        if op == "full":
            shape = {"RC": (P, g.BR, g.BC), "R1": (P, g.BR, 1), "1C": (P, 1, g.BC), "R": (P, g.BR), "C": (P, g.BC),
                     "S": (P,)}[n.kind]
            v = np.full(shape, n.params[0], np.float64 if n.dtype in FLOATS else np.int64)
            if n.dtype in FLOATS:
                v = _to(n.dtype, v)
            return Val(v, np.zeros(shape), n.kind, n.dtype)
        if op == "carried":
            return self.env[n.name]
        if op == "copy":
            x = self.value(n.args[0])
            return Val(x.v, x.e, n.kind, n.dtype)
        args = [self.value(a) for a in n.args]
        if op in ("add", "sub", "mul", "max", "min"):
            return self.arith(op, args[0], args[1], n)
        if op == "div":
            return self.div(args[0], args[1], n)
        if op == "fma":
            d = n.dtype
            (va, ea), (vb, eb), (vc, ec) = (_aligned(convert(x, d), n.kind, P) for x in args)
            v = va * vb + vc
            pm = _fix(np.abs(va) * eb + np.abs(vb) * ea + ea * eb)
            ep = pm + ec
            e = ep + _rnd(d, np.abs(va * vb) + pm) + _rnd(d, np.abs(v) + ep)
            return Val(v, _fix(e), n.kind, d)
        if op in ("floordiv", "mod"):
            (va, ea), (vb, eb) = (_aligned(convert(x, I32), n.kind, P) for x in args)
            q = _tdiv(va, vb)
            if op == "mod":
                v = va - q * vb
                e = np.where((ea > 0) | (eb > 0), np.inf, 0.0)
            else:
                v = q
                ei = _int_err(ea)
                e = np.maximum(np.abs(_tdiv(va - ei, vb) - q), np.abs(_tdiv(va + ei, vb) - q)).astype(np.float64)
                e = np.where(np.isfinite(ea) & (eb == 0), e, np.inf)
            return Val(_wrap(v), e, n.kind, I32)
        if op in ("and", "or", "xor"):
            (va, ea), (vb, eb) = (_aligned(convert(x, I32), n.kind, P) for x in args)
            v = {"and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor}[op](va, vb)
            return Val(v, np.where(ea + eb > 0, np.inf, 0.0), n.kind, I32)
        if op in ("shl", "shr"):
            (k,) = n.params
            x = args[0]
            if op == "shl":
                u = x.v << k
                return Val(_wrap(u), _crossing(u, x.e * 2**k), n.kind, I32)
            v = x.v >> k
            ei = _int_err(x.e)
            e = np.maximum(np.abs(((x.v + ei) >> k) - v), np.abs(((x.v - ei) >> k) - v)).astype(np.float64)
            return Val(v, np.where(np.isfinite(x.e), e, np.inf), n.kind, I32)
        if op in ("neg", "abs", "invert", "pow2", "pow3"):
            x = args[0]
            d = n.dtype
            if d == I32:
                u = {"neg": lambda: -x.v, "abs": lambda: np.abs(x.v), "invert": lambda: ~x.v,
                     "pow2": lambda: x.v * x.v, "pow3": lambda: _wrap(x.v * x.v) * x.v}[op]()
                ep = {"pow2": 2 * np.abs(x.v) * x.e + x.e**2,
                      "pow3": 3.0 * np.abs(x.v)**2 * x.e + 3 * np.abs(x.v) * x.e**2 + x.e**3}.get(op, x.e)
                if op == "pow3":  # the product of a wrapped square: exact only without errors
                    return Val(_wrap(u), np.where(x.e > 0, np.inf, 0.0), n.kind, d)
                return Val(_wrap(u), _crossing(u, _fix(ep)), n.kind, d)
            if op in ("neg", "abs"):
                return Val(-x.v if op == "neg" else np.abs(x.v), x.e, n.kind, d)
            if op == "pow2":
                v = x.v * x.v
                ep = 2 * np.abs(x.v) * x.e + x.e**2
                return Val(v, _fix(ep + _rnd(d, np.abs(v) + ep)), n.kind, d)
            v = x.v**3
            ep = 3 * x.v**2 * x.e + 3 * np.abs(x.v) * x.e**2 + x.e**3
            return Val(v, _fix(ep + 2 * _rnd(d, np.abs(v) + ep)), n.kind, d)
        if op in MATH:
            x = args[0]
            d = n.dtype
            f = MATH_FN[op]
            v = f(x.v)
            if op in ("sin", "cos"):
                ep = np.minimum(x.e, 2.0)
            else:
                dom = n.args[0].pos if op in ("log", "log2", "sqrt", "rsqrt") else -np.inf
                ep = _monotone(f, x.v, x.e, dom)
            e = ep if op in ("floor", "ceil") else ep + _math_rnd(d, np.abs(v) + ep)
            return Val(v, _fix(e), n.kind, d)
        if op == "cast":
            return convert(args[0], n.params[0])
        if op == "cmp":
            a, b = args
            d = compute_type(a.dtype, b.dtype, "cmp")
            (va, ea), (vb, eb) = (_aligned(convert(x, d), n.kind, P) for x in (a, b))
            pred = {"<": np.less, ">": np.greater, "<=": np.less_equal, ">=": np.greater_equal, "==": np.equal,
                    "!=": np.not_equal}[n.params[0]]
            v = pred(va, vb)
            diff = np.abs(va.astype(np.float64) - vb.astype(np.float64))
            amb = ((ea + eb) > 0) & (diff <= ea + eb)
            return Val(v, amb.astype(np.float64), n.kind, I1)
        if op in ("land", "lor"):
            (va, ea), (vb, eb) = (_aligned(x, n.kind, P) for x in args)
            aa, ab = ea > 0, eb > 0
            if op == "land":
                v = va & vb
                amb = (aa & (vb | ab)) | (ab & (va | aa))
            else:
                v = va | vb
                amb = (aa & (~vb | ab)) | (ab & (~va | aa))
            return Val(v, amb.astype(np.float64), n.kind, I1)
        if op == "lnot":
            return Val(~args[0].v, args[0].e, n.kind, I1)
        if op == "where":
            c, p, q = args
            d = n.dtype
            (vc, ec) = _aligned(c, n.kind, P)
            (vp, ep), (vq, eq) = (_aligned(convert(x, d), n.kind, P) for x in (p, q))
            shape = np.broadcast_shapes(np.shape(vc), np.shape(vp), np.shape(vq))
            v = np.where(vc, vp, vq)
            e_sel = np.where(vc, ep, eq)
            v_oth, e_oth = np.where(vc, vq, vp), np.where(vc, eq, ep)
            spread = np.abs(v_oth.astype(np.float64) - v.astype(np.float64)) + e_oth
            e = np.where(ec > 0, np.maximum(e_sel, spread), e_sel)
            return Val(np.broadcast_to(v, shape).copy(), np.broadcast_to(_fix(e), shape).copy(), n.kind, d)
        if op in ("sum", "rmax", "rmin"):
            return self.reduce(op, args[0], n)
        if op == "expand":
            x = args[0]
            idx = (slice(None), slice(None), None) if n.kind == "R1" else (slice(None), None, slice(None))
            return Val(x.v[idx], np.broadcast_to(x.e, x.v.shape)[idx], n.kind, n.dtype)
        if op == "reshape":
            x = args[0]
            idx = (slice(None), slice(None), 0) if x.kind == "R1" else (slice(None), 0, slice(None))
            return Val(x.v[idx], np.broadcast_to(x.e, x.v.shape)[idx], n.kind, n.dtype)
        if op == "bcast":
            x = args[0]
            v, e = _aligned(x, n.kind, P)
            shape = (P, g.BR, g.BC) if n.kind == "RC" else (P, g.BC)
            return Val(np.broadcast_to(v, shape).copy(), np.broadcast_to(e, shape).copy(), n.kind, n.dtype)
        raise AssertionError(op)

    def arith(self, op, a, b, n):
        d = compute_type(a.dtype, b.dtype, op)
        P = self.geo.programs
        (va, ea), (vb, eb) = (_aligned(convert(x, d), n.kind, P) for x in (a, b))
        if op == "add":
            u, ep = va + vb, ea + eb
        elif op == "sub":
            u, ep = va - vb, ea + eb
        elif op == "mul":
            u, ep = va * vb, _fix(np.abs(va) * eb + np.abs(vb) * ea + ea * eb)
        else:
            u = np.maximum(va, vb) if op == "max" else np.minimum(va, vb)
            return Val(u, np.broadcast_to(np.maximum(ea, eb), np.shape(u)).copy(), n.kind, d)
        if d == I32:
            return Val(_wrap(u), _crossing(u, ep), n.kind, d)
        ep = np.broadcast_to(ep, np.shape(u))
        return Val(u, _fix(ep + _rnd(d, np.abs(u) + ep)), n.kind, d)

    def div(self, a, b, n):
        d = n.dtype
        P = self.geo.programs
        (va, ea), (vb, eb) = (_aligned(convert(x, d), n.kind, P) for x in (a, b))
        pos = n.args[1].pos
        if not np.all(vb >= pos):
            raise FuzzerError(f"{n.name}: a denominator below its bound {pos}")
        v = va / vb
        dmin = np.maximum(np.abs(vb) - eb, pos)
        ep = _fix((ea * np.abs(vb) + np.abs(va) * eb) / (np.abs(vb) * dmin))
        return Val(v, _fix(ep + _rnd(d, np.abs(v) + ep)), n.kind, d)

    def reduce(self, op, x, n):
        axis, keep = n.params
        d = n.dtype
        x = convert(x, d)
        nd = x.v.ndim
        axes = tuple(range(1, nd)) if axis is None else (axis + 1,)
        count = self.geo.count(n.args[0].kind, axis)
        e_in = np.broadcast_to(x.e, x.v.shape)
        if op in ("rmax", "rmin"):
            f = np.max if op == "rmax" else np.min
            return Val(f(x.v, axis=axes, keepdims=keep), np.max(e_in, axis=axes, keepdims=keep), n.kind, d)
        if d == I32:
            u = np.sum(x.v, axis=axes, keepdims=keep)
            return Val(_wrap(u), _crossing(u, np.sum(e_in, axis=axes, keepdims=keep)), n.kind, d)
        v = np.sum(x.v, axis=axes, keepdims=keep)
        E = np.sum(e_in, axis=axes, keepdims=keep)
        M = np.sum(np.abs(x.v) + e_in, axis=axes, keepdims=keep)
        e = E + (UNIT[d] * (count - 1) + REF * count) * M + _rnd(d, np.abs(v) + E) + count * TINY[d]
        return Val(v, _fix(e), n.kind, d)


# ------------------------------------------------------------------------ outputs and checks

def _layout(geo: Geometry, o: Output, ref: Reference):
    """(size of o's array, flat indices of what one store writes, which of them it writes)."""
    kind = o.node.kind
    s = geo.structure
    P = geo.programs
    R, C, rv, cv = ref.R, ref.C, ref.rvalid, ref.cvalid
    BR, BC = geo.BR, geo.BC
    if kind == "S":
        return P, np.arange(P), np.ones(P, bool)
    if s == "flat":
        return geo.cols, C, cv
    if s == "tile" or o.phase == "loop":
        ntr = geo.ntr
        return {"RC": (geo.rows * geo.cols, R[:, :, None] * geo.cols + C[:, None, :], rv[:, :, None] & cv[:, None, :]),
                "R": (geo.ntc * geo.rows, ref.pid_c[:, None] * geo.rows + R, rv),
                "C": (ntr * geo.cols, ref.pid_r[:, None] * geo.cols + C, cv)}[_axes(kind)]
    j = np.arange(BC)[None, :]
    return {"RC": (geo.rows * BC, R[:, :, None] * BC + j[:, None, :], np.broadcast_to(rv[:, :, None], (P, BR, BC))),
            "R": (geo.rows, R, rv),
            "C": (P * BC, ref.pid_r[:, None] * BC + j, np.ones((P, BC), bool))}[_axes(kind)]


def _axes(kind):
    """The layout family of a kind: RC, R (rows: R, R1) or C (columns: C, 1C)."""
    return {"R1": "R", "1C": "C"}.get(kind, kind)


def _squeeze(kind, x):
    if kind == "R1":
        return x[:, :, 0]
    if kind == "1C":
        return x[:, 0, :]
    return x


def _guard(geo: Geometry) -> int:
    return geo.BR * geo.cols + geo.cols + geo.BR * geo.BC + geo.BC + 64


@dataclass
class Expected:
    size: int
    v: np.ndarray
    e: np.ndarray
    written: np.ndarray


def inputs(spec: KernelSpec, seed: int):
    """Fresh inputs for `spec` (arrays and the scalars s, q), from `seed`."""
    rng = np.random.default_rng(seed)
    g = spec.geo
    arrays = {}
    for a in spec.arrays:
        shape = {"mat": (g.rows, g.cols), "row": (g.cols,), "col": (g.rows,), "vec": (g.cols,)}[a.shape]
        if a.dtype in FLOATS:
            x = rng.uniform(-INPUT_RANGE, INPUT_RANGE, shape)
            if a.values == "quarters":
                x = np.round(x * 4) / 4
            arrays[a.name] = x.astype(NUMPY[a.dtype])
        elif a.values == "full":
            arrays[a.name] = rng.integers(INT_MIN, INT_MAX, shape, endpoint=True).astype(np.int32)
        else:
            arrays[a.name] = rng.integers(-INT_RANGE, INT_RANGE, shape, endpoint=True).astype(np.int32)
    scalars = {"s": float(rng.integers(-32, 32)) / 8, "q": int(rng.integers(-50, 50))}
    return arrays, scalars


def reference(spec: KernelSpec, arrays: dict, scalars: dict) -> dict[str, Expected]:
    """Every output's expected contents (values, bounds, which elements are written)."""
    g = spec.geo
    ref = Reference(spec, arrays, scalars)
    expected: dict[str, Expected] = {}
    for o in spec.outputs:
        size = _layout(g, o, ref)[0]
        expected[o.name] = Expected(size, np.zeros(size), np.zeros(size), np.zeros(size, bool))

    def store(o: Output):
        _, idx, ok = _layout(g, o, ref)
        val = convert(ref.env[o.node.name], o.dtype)
        v = _squeeze(o.node.kind, np.broadcast_to(val.v, np.shape(ref.env[o.node.name].v)))
        e = _squeeze(o.node.kind, np.broadcast_to(val.e, np.shape(ref.env[o.node.name].v)))
        if o.node.kind in ("RC", "R1", "1C", "R", "C") and v.shape != idx.shape:
            v, e = np.broadcast_to(v, idx.shape), np.broadcast_to(e, idx.shape)
        if not g.masked:
            ok = np.ones(np.shape(idx), bool)
        ex = expected[o.name]
        if ex.written[idx[ok]].any():
            raise FuzzerError(f"{o.name}: an element stored twice")
        ex.v[idx[ok]] = v[ok]
        ex.e[idx[ok]] = e[ok]
        ex.written[idx[ok]] = True

    phases = {"flat": ["main"], "tile": ["main"], "loop": ["pre", "loop", "post"]}[g.structure]
    for phase in phases:
        nodes = [n for n in spec.nodes if n.phase == phase]
        for t in range(g.trips if phase == "loop" else 1):
            if phase == "loop":
                ref.set_tile(t)
            for n in nodes:
                ref.run(n)
            for o in spec.outputs:
                if o.phase == phase:
                    store(o)
    for name, ex in expected.items():
        if not ex.written.any():
            raise FuzzerError(f"{name}: nothing written")
    return expected


@dataclass
class Failure:
    target: str
    what: str  # "mismatch", "crash", "reference"
    message: str


def check(spec: KernelSpec, seed: int = 0, targets=TARGETS, directory: str | None = None) -> list[Failure]:
    """Runs `spec` on each target and compares every output element with the reference."""
    arrays, scalars = inputs(spec, seed)
    try:
        expected = reference(spec, arrays, scalars)
    except Exception:  # noqa: BLE001 - a broken reference is the fuzzer's failure, reported as such
        return [Failure("reference", "reference", traceback.format_exc())]
    own = tempfile.TemporaryDirectory(prefix="kdsl-fuzz-") if directory is None else contextlib.nullcontext(directory)
    with own as tmp:
        try:
            kernel = build(spec.source, tmp)
        except Exception:  # noqa: BLE001
            return [Failure("build", "crash", traceback.format_exc())]
        g = spec.geo
        G = _guard(g)
        failures = []
        for target in targets:
            buffers = {o.name: poisoned(G + expected[o.name].size + G, o.dtype) for o in spec.outputs}
            args = [arrays[a.name] for a in used_arrays(spec)]
            args += [buffers[o.name][G:G + expected[o.name].size] for o in spec.outputs]
            if g.structure == "flat":
                args += [g.cols, scalars["s"], scalars["q"]]
                meta = {"BC": g.BC}
            elif g.structure == "tile":
                args += [g.rows, g.cols, scalars["s"], scalars["q"]]
                meta = {"BR": g.BR, "BC": g.BC}
            else:
                args += [g.rows, g.cols, scalars["s"], scalars["q"], g.trips]
                meta = {"BR": g.BR, "BC": g.BC, "NT": g.trips}
            try:
                kernel[g.grid](*args, **meta, target=target, num_warps=g.num_warps)
            except Exception:  # noqa: BLE001 - any exception of a launch is a failure
                failures.append(Failure(target, "crash", traceback.format_exc()))
                continue
            for o in spec.outputs:
                problem = compare(buffers[o.name], expected[o.name], G, o.dtype)
                if problem:
                    failures.append(Failure(target, "mismatch", f"output {o.name} ({o.node.name}, "
                                                                f"{o.node.kind} stored as {o.dtype}): {problem}"))
        return failures


def compare(buffer: np.ndarray, ex: Expected, G: int, dtype: str) -> str | None:
    """None if `buffer` (with its guards) holds what `ex` expects, else a description."""
    sentinel = poisoned(1, dtype)[0]
    head, body, tail = buffer[:G], buffer[G:G + ex.size], buffer[G + ex.size:]
    untouched = (lambda x: np.isnan(x)) if dtype in FLOATS else (lambda x: x == sentinel)
    for what, part in (("before the array", head), ("after the array", tail)):
        if not untouched(part).all():
            bad = np.flatnonzero(~untouched(part))
            return f"{len(bad)} elements written {what} (first offsets {bad[:5].tolist()})"
    unwritten = ~ex.written
    if not untouched(body[unwritten]).all():
        bad = np.flatnonzero(unwritten & ~untouched(body))
        return f"{len(bad)} elements written that no unmasked lane stores (indices {bad[:8].tolist()}: {body[bad[:8]]})"
    got = body[ex.written]
    want, bound = ex.v[ex.written], ex.e[ex.written]
    idx = np.flatnonzero(ex.written)
    if dtype in FLOATS:
        err = np.abs(got.astype(np.float64) - want)
        bad = ~(err <= bound * (1 + 2.0**-20))
    else:
        err = np.abs(got.astype(np.int64) - want.astype(np.int64)).astype(np.float64)
        bad = ~(err <= bound)
    if bad.any():
        k = np.flatnonzero(bad)[:6]
        return (f"{int(bad.sum())} of {bad.size} elements beyond the bound: at {idx[k].tolist()} "
                f"got {got[k].tolist()}, "
                f"expected {want[k].tolist()} within {bound[k].tolist()}")
    return None


def describe(failures: list[Failure]) -> str:
    return "\n".join(f"[{f.target}] {f.what}: {f.message}" for f in failures)
