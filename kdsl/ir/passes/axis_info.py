"""Axis analysis (Triton's AxisInfo): what the GPU lowering needs to know to vectorise memory accesses.

For every integer or pointer value and every dimension d of its shape (scalars have one):

- contiguity[d]: along d the values come in runs of this length, each run increasing by 1
  (pointers: by one element);
- divisibility[d]: the largest power of two dividing the first value of every such run
  (pointers: in bytes), so with contiguity 1 it divides every value;
- constancy[d]: along d the values come in runs of this length of one value;
- lower: a bound every value is at least, when known (unsigned values: 0; signed ones from
  program ids, aranges, constants and int arguments specialised as 0 or positive, through add,
  mul, div, rem, min, max, and, shr and loops, ignoring wrap-around as Triton does): `x % n`
  keeps x's runs only where x is not negative, and `x // y` is not negative where y is positive.

Every run starts at a multiple of its length. The facts come from `program_id * BLOCK`,
`arange`, constants and the specialisation of pointer and integer arguments
(`divisibility` 16, `value` 1 for ints equal to 1 and `min` 0 or 1 for ints that are 0 or
positive, in the kernel's argument attributes,
see runtime/binding.py),
and are carried through splat, broadcast, expand_dims, add, sub, mul, addptr, shl, shr,
and, rem (`x % n` for non-negative x: runs split where n's divisibility cuts them), min/max
and div (their signs), comparisons and casts that widen, and through `for` loops' carried values
and `if` results; `multiple_of` and `max_contiguous` add the user's promises. Anything else is assumed
to know nothing (1, 1, 1), except that an elementwise op keeps the constancy its operands share.
This is an analysis: it leaves the IR as it is.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from math import gcd
from typing import Callable

from kdsl.ir.core import Function, Operation, Value
from kdsl.ir.ops import ELEMENTWISE, has_trait, hint_values
from kdsl.ir.types import PointerType, ScalarType

MAX_DIVISIBILITY = 1 << 62  # what divides 0


@dataclass(frozen=True)
class AxisInfo:
    contiguity: tuple[int, ...]
    divisibility: tuple[int, ...]
    constancy: tuple[int, ...]
    value: int | None = None  # the one value of every element, when known
    lower: int | None = None  # every value is at least this, when known

    @property
    def nonnegative(self) -> bool:
        return self.lower is not None and self.lower >= 0

    @property
    def rank(self) -> int:
        return len(self.contiguity)


def pow2_divisor(n: int) -> int:
    """The largest power of two dividing `n` (MAX_DIVISIBILITY for 0)."""
    return min(n & -n, MAX_DIVISIBILITY) if n else MAX_DIVISIBILITY


def _dims(v: Value) -> tuple[int, ...]:
    return v.type.shape or (1,)


def unknown(v: Value) -> AxisInfo:
    ones = (1,) * len(_dims(v))
    return AxisInfo(ones, ones, ones)


def uniform(v: Value, divisibility: int, value: int | None = None, lower: int | None = None) -> AxisInfo:
    """Every element the same (unknown unless `value` is given), divisible by `divisibility`."""
    dims = _dims(v)
    return AxisInfo((1,) * len(dims), (divisibility,) * len(dims), dims, value,
                    _bound(v, value if value is not None else lower))


def _bound(v: Value, lower: int | None) -> int | None:
    """`lower`, raised to 0 for unsigned values."""
    elem = v.type.scalar
    if isinstance(elem, ScalarType) and elem.is_int and not elem.is_signed:
        return 0 if lower is None else max(lower, 0)
    return lower


def _both(f: Callable[[int, int], int], a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else f(a, b)


def _run_start_divisibility(info: AxisInfo, d: int, run: int) -> int:
    """What divides `info`'s values at the starts of another value's runs of length `run` along d."""
    if run >= info.contiguity[d]:
        return info.divisibility[d]
    return gcd(info.divisibility[d], run)


def _element_divisibility(info: AxisInfo) -> int:
    """What divides every element."""
    return min(_run_start_divisibility(info, d, 1) for d in range(info.rank))


def _is_uniform(info: AxisInfo, dims: tuple[int, ...], d: int) -> bool:
    return info.constancy[d] == dims[d]


class AxisAnalysis:
    """Axis facts for every value of one function, computed once in program order.

    A `for` loop's carried values start with their initial values' facts; the body is analysed
    again with the facts that hold for both those and what it yields, until nothing changes (the
    facts only weaken, and a lower bound that moves is dropped, so this ends): a pointer advanced
    by a multiple of 16 bytes each iteration stays as contiguous and aligned as it began. An `if` gives what both its branches yield."""

    def __init__(self, fn: Function):
        self.info: dict[Value, AxisInfo] = {}
        for arg, attrs in zip(fn.args, fn.arg_attrs):
            self.info[arg] = (uniform(arg, attrs.get("divisibility", 1), attrs.get("value"), attrs.get("min"))
                              if _tracked(arg) else unknown(arg))
        self._region(fn.body)

    def __getitem__(self, value: Value) -> AxisInfo:
        return self.info[value]

    def _region(self, region) -> list[AxisInfo]:
        """Analyse `region`'s operations; returns the facts of what its terminator yields."""
        for op in region.ops:
            self._visit(op)
        term = region.terminator
        return [self.info[v] for v in term.operands] if term is not None and term.name == "yield" else []

    def _visit(self, op: Operation) -> None:
        if op.name == "for":
            self._for(op)
            return
        self.info.update({a: unknown(a) for region in op.regions for a in region.args})
        yielded = [self._region(region) for region in op.regions]
        if op.name == "if":
            self.info.update(zip(op.results, map(join, *yielded)))
            return
        rule = _RULES.get(op.name)
        for result in op.results:
            if not _tracked(result):
                self.info[result] = unknown(result)
            elif rule is not None:
                self.info[result] = rule(op, [self.info[v] for v in op.operands])
            elif has_trait(op, ELEMENTWISE):
                self.info[result] = _keep_constancy(op, [self.info[v] for v in op.operands])
            else:
                self.info[result] = unknown(result)

    def _for(self, op: Operation) -> None:
        lower, _, step = (self.info[v] for v in op.operands[:3])
        iv, *carried = op.regions[0].args
        self.info[iv] = AxisInfo((1,), (gcd(_element_divisibility(lower), _element_divisibility(step)),), (1,),
                                 lower=lower.lower if step.nonnegative else None)
        facts = [self.info[v] if _tracked(v) else unknown(v) for v in op.operands[3:]]
        while True:
            self.info.update(zip(carried, facts))
            weakened = [_widen(fact, join(fact, y)) for fact, y in zip(facts, self._region(op.regions[0]))]
            if weakened == facts:
                break
            facts = weakened
        self.info.update(zip(op.results, facts))


def _widen(before: AxisInfo, after: AxisInfo) -> AxisInfo:
    """A carried value's facts after one more pass over the loop: a lower bound that moved is
    dropped (it could move at every pass: `x = x - 1`)."""
    return after if after.lower == before.lower else replace(after, lower=None)


def join(a: AxisInfo, b: AxisInfo) -> AxisInfo:
    """The facts that hold for a value that is either `a`'s or `b`'s."""
    contiguity = tuple(map(gcd, a.contiguity, b.contiguity))
    divisibility = tuple(gcd(_run_start_divisibility(a, d, c), _run_start_divisibility(b, d, c))
                         for d, c in enumerate(contiguity))
    return AxisInfo(contiguity, divisibility, tuple(map(gcd, a.constancy, b.constancy)),
                    a.value if a.value == b.value else None, _both(min, a.lower, b.lower))


def _tracked(v: Value) -> bool:
    elem = v.type.scalar
    return isinstance(elem, PointerType) or (isinstance(elem, ScalarType) and elem.is_int)


def _constant(op: Operation, _: list[AxisInfo]) -> AxisInfo:
    value = int(op.attrs["value"])
    return uniform(op.result, pow2_divisor(value), value)


def _program_index(op: Operation, _: list[AxisInfo]) -> AxisInfo:
    return uniform(op.result, 1, lower=0 if op.name == "program_id" else 1)


def _arange(op: Operation, _: list[AxisInfo]) -> AxisInfo:
    n = op.attrs["end"] - op.attrs["start"]
    return AxisInfo((n,), (pow2_divisor(op.attrs["start"]),), (1,), lower=op.attrs["start"])


def _splat(op: Operation, ops: list[AxisInfo]) -> AxisInfo:
    return uniform(op.result, _element_divisibility(ops[0]), ops[0].value, ops[0].lower)


def _broadcast(op: Operation, ops: list[AxisInfo]) -> AxisInfo:
    (src,) = ops
    old, new = _dims(op.operands[0]), _dims(op.result)
    grown = [o == 1 and n > 1 for o, n in zip(old, new)]
    return AxisInfo(tuple(1 if g else c for g, c in zip(grown, src.contiguity)),
                    tuple(_element_divisibility(src) if g else d for g, d in zip(grown, src.divisibility)),
                    tuple(n if g else c for g, n, c in zip(grown, new, src.constancy)), src.value, src.lower)


def _expand_dims(op: Operation, ops: list[AxisInfo]) -> AxisInfo:
    (src,) = ops
    axis = op.attrs["axis"]
    if not op.operands[0].type.shape:  # a scalar already has its one dimension of size 1
        return src

    def insert(values: tuple[int, ...], new: int) -> tuple[int, ...]:
        return values[:axis] + (new,) + values[axis:]

    return AxisInfo(insert(src.contiguity, 1), insert(src.divisibility, _element_divisibility(src)),
                    insert(src.constancy, 1), src.value, src.lower)


def _elementwise(op: Operation, ops: list[AxisInfo], contiguity: Callable[[int], int],
                 divisibility: Callable[[int, int], int], value: Callable[..., int | None] | None = None,
                 lower: int | None = None) -> AxisInfo:
    """A binary elementwise op from per-dimension rules; `divisibility(d, run)` gets the result's contiguity."""
    runs = tuple(contiguity(d) for d in range(ops[0].rank))
    known = value is not None and all(o.value is not None for o in ops)
    result = value(*(o.value for o in ops)) if known else None
    result = None if result is None else _wrap(result, op.result.type.scalar)
    return AxisInfo(runs, tuple(min(divisibility(d, r), MAX_DIVISIBILITY) for d, r in enumerate(runs)),
                    tuple(gcd(*(o.constancy[d] for o in ops)) for d in range(ops[0].rank)), result,
                    _bound(op.result, result if result is not None else lower))


def _wrap(value: int, t: ScalarType) -> int:
    """`value` as the integer type `t` holds it (two's complement wrap-around)."""
    value &= (1 << t.bits) - 1
    return value - (1 << t.bits) if t.is_signed and value >> (t.bits - 1) else value


def _add_sub(op: Operation, ops: list[AxisInfo]) -> AxisInfo:
    lhs, rhs = ops
    scale = op.operands[0].type.scalar.elem.bytes if op.name == "addptr" else 1  # type: ignore[union-attr]

    def contiguity(d: int) -> int:
        run = gcd(lhs.contiguity[d], rhs.constancy[d])
        return run if op.name == "sub" else max(run, gcd(lhs.constancy[d], rhs.contiguity[d]))

    def divisibility(d: int, run: int) -> int:
        return gcd(_run_start_divisibility(lhs, d, run), _run_start_divisibility(rhs, d, run) * scale)

    combine = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "addptr": None}[op.name]
    return _elementwise(op, ops, contiguity, divisibility, combine,
                        _both(lambda a, b: a + b, lhs.lower, rhs.lower) if op.name == "add" else None)


def _mul(op: Operation, ops: list[AxisInfo]) -> AxisInfo:
    lhs, rhs = ops

    def contiguity(d: int) -> int:
        return max(lhs.contiguity[d] if rhs.value == 1 else 1, rhs.contiguity[d] if lhs.value == 1 else 1)

    def divisibility(d: int, run: int) -> int:
        return _run_start_divisibility(lhs, d, run) * _run_start_divisibility(rhs, d, run)

    return _elementwise(op, ops, contiguity, divisibility, lambda a, b: a * b,
                        lhs.lower * rhs.lower if lhs.nonnegative and rhs.nonnegative else None)


def _rem(op: Operation, ops: list[AxisInfo]) -> AxisInfo:
    """x % n with n uniform along d and x non-negative: a run of x wraps only at multiples of n, so
    it stays in runs as long as the power of two dividing n (and aligned as x's runs start). The
    remainder takes x's sign, so it is non-negative where x is."""
    lhs, rhs = ops
    dims = _dims(op.result)

    def splits(d: int) -> int:
        return min(rhs.divisibility[d], lhs.divisibility[d]) if lhs.nonnegative and _is_uniform(rhs, dims, d) else 1

    def contiguity(d: int) -> int:
        return gcd(lhs.contiguity[d], splits(d))

    def divisibility(d: int, run: int) -> int:  # x - q * n, whatever q is
        return gcd(_run_start_divisibility(lhs, d, run), _run_start_divisibility(rhs, d, run))

    def value(a: int, b: int) -> int | None:
        return None if b == 0 else (abs(a) % abs(b)) * (1 if a >= 0 else -1)

    return _elementwise(op, ops, contiguity, divisibility, value, 0 if lhs.nonnegative else None)


def _bounded(op: Operation, ops: list[AxisInfo]) -> AxisInfo:
    """div, min and max: the constancy their operands share and their lower bound (x // y with x
    not negative and y positive: at least x's bound over y's where y is known, else 0; a divisor
    that may be 0 gives -1)."""
    lhs, rhs = ops
    if op.name == "div":
        positive = rhs.lower is not None and rhs.lower >= 1
        lower = (lhs.lower // rhs.value if rhs.value is not None else 0) if lhs.nonnegative and positive else None
    elif op.name == "min":
        lower = _both(min, lhs.lower, rhs.lower)
    else:
        known = [b for b in (lhs.lower, rhs.lower) if b is not None]
        lower = max(known) if known else None
    base = _keep_constancy(op, ops)
    return AxisInfo(base.contiguity, base.divisibility, base.constancy, lower=_bound(op.result, lower))


def _shift(op: Operation, ops: list[AxisInfo]) -> AxisInfo:
    lhs, rhs = ops
    shift = rhs.value if rhs.value is not None and 0 <= rhs.value < op.result.type.scalar.bits else None

    def contiguity(d: int) -> int:
        return lhs.contiguity[d] if shift == 0 else 1

    def divisibility(d: int, run: int) -> int:
        if shift is None:
            return 1
        start = _run_start_divisibility(lhs, d, run)
        return start << shift if op.name == "shl" else max(start >> shift, 1)

    combine = {"shl": lambda a, b: a << b, "shr": lambda a, b: a >> b}[op.name] if shift is not None else None
    lower = (lhs.lower >> shift if shift is not None else 0) if op.name == "shr" and lhs.nonnegative else None
    return _elementwise(op, ops, contiguity, divisibility, combine, lower)


def _and(op: Operation, ops: list[AxisInfo]) -> AxisInfo:
    """x & c: runs survive masks of low bits (c = 2**k - 1) up to 2**k long, where they start aligned."""
    lhs, rhs = ops if ops[0].value is None else ops[::-1]
    low_bits = rhs.value + 1 if rhs.value is not None and rhs.value >= 0 else 0
    low_bits = low_bits if low_bits & (low_bits - 1) == 0 else 0

    def contiguity(d: int) -> int:
        return min(lhs.contiguity[d], low_bits, lhs.divisibility[d]) if low_bits else 1

    def divisibility(d: int, run: int) -> int:
        return max(_run_start_divisibility(lhs, d, run), _run_start_divisibility(rhs, d, run))

    return _elementwise(op, ops, contiguity, divisibility, lambda a, b: a & b,
                        0 if lhs.nonnegative or rhs.nonnegative else None)


_LESS = {"lt": False, "ge": False, "gt": True, "le": True}  # value: whether the uniform side is the left


def _cmp(op: Operation, ops: list[AxisInfo]) -> AxisInfo:
    """x < n with x in aligned runs and n uniform: the answer is one per run as long as n's
    divisibility aligns it with the runs (likewise ge, and gt/le with the sides swapped)."""
    dims = _dims(op.operands[0])
    base = _keep_constancy(op, ops)
    uniform_left = _LESS.get(op.attrs["pred"])
    if uniform_left is None:
        return base
    runs, fixed = (ops[1], ops[0]) if uniform_left else (ops[0], ops[1])
    constancy = tuple(max(c, gcd(runs.contiguity[d], gcd(runs.divisibility[d], fixed.divisibility[d])))
                      if _is_uniform(fixed, dims, d) else c for d, c in enumerate(base.constancy))
    return AxisInfo(base.contiguity, base.divisibility, constancy)


def _cast(op: Operation, ops: list[AxisInfo]) -> AxisInfo:
    src, dst = op.operands[0].type.scalar, op.result.type.scalar
    widens = isinstance(src, ScalarType) and src.is_int and dst.bits >= src.bits and (  # type: ignore[union-attr]
        src.kind == dst.kind or (src.kind == "uint" and dst.bits > src.bits))  # type: ignore[union-attr]
    return ops[0] if widens else _keep_constancy(op, ops)


def _multiple_of(op: Operation, ops: list[AxisInfo]) -> AxisInfo:
    """The user's promise: each run starts at a multiple of the value (its power-of-two part)."""
    (x,) = ops
    divisibility = tuple(max(d, pow2_divisor(v)) for d, v in zip(x.divisibility, hint_values(op)))
    return AxisInfo(x.contiguity, divisibility, x.constancy, x.value, x.lower)


def _max_contiguous(op: Operation, ops: list[AxisInfo]) -> AxisInfo:
    """The user's promise: runs of the value (its power-of-two part, at most the dimension) increase by 1."""
    (x,) = ops
    contiguity = tuple(max(c, min(pow2_divisor(v), n)) for c, v, n in zip(x.contiguity, hint_values(op), _dims(op.result)))
    return AxisInfo(contiguity, x.divisibility, x.constancy, x.value, x.lower)


def _keep_constancy(op: Operation, ops: list[AxisInfo]) -> AxisInfo:
    rank = len(_dims(op.result))
    return AxisInfo((1,) * rank, (1,) * rank, tuple(gcd(*(o.constancy[d] for o in ops)) for d in range(rank)),
                    lower=_bound(op.result, None))


_RULES: dict[str, Callable[[Operation, list[AxisInfo]], AxisInfo]] = {
    "constant": _constant, "program_id": _program_index, "num_programs": _program_index, "arange": _arange,
    "splat": _splat, "broadcast": _broadcast, "expand_dims": _expand_dims,
    "add": _add_sub, "sub": _add_sub, "addptr": _add_sub, "mul": _mul, "shl": _shift, "shr": _shift,
    "rem": _rem, "div": _bounded, "min": _bounded, "max": _bounded, "and": _and, "cmp": _cmp, "cast": _cast,
    "multiple_of": _multiple_of, "max_contiguous": _max_contiguous,
}
