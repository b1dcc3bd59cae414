"""Differential tests: hypothesis writes random kernels (chains of elementwise operations on masked
loads, optionally ending in a masked row reduction), and each runs on `cpu` and `sim` against a numpy
evaluation of the same chain.

Integer kernels (int32, wrapping) must agree exactly. Float kernels are checked against a float64
evaluation with a running error bound: each operation adds its rounding error (and a few ulps for
math functions) to the errors of its operands scaled by how much the operation can magnify them, so
the check holds whatever order, contraction into fma or math library a target uses, and fails on
any real miscompilation."""
from __future__ import annotations

import importlib.util
import itertools
from dataclasses import dataclass

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import kdsl
from tests.helpers import poisoned, random_array

TARGETS = ("cpu", "sim")
SETTINGS = settings(max_examples=12, deadline=None)
LEAVES = ("x", "y", "z")
F32_UNIT = 2.0**-24
MATH_ULPS = 4

# name: (kdsl expression, arity); `{0}`, `{1}` are the operands
FLOAT_OPS = {
    "add": ("{0} + {1}", 2), "sub": ("{0} - {1}", 2), "mul": ("{0} * {1}", 2),
    "max": ("kl.maximum({0}, {1})", 2), "min": ("kl.minimum({0}, {1})", 2),
    "select": ("kl.where({0} > {1}, {0}, {1} * 0.5)", 2),
    "neg": ("-{0}", 1), "abs": ("kl.abs({0})", 1), "decay": ("kl.exp(-kl.abs({0}))", 1),
    "sin": ("kl.sin({0})", 1), "root": ("kl.sqrt(kl.abs({0}) + 1.0)", 1),
}
INT_OPS = {
    "add": ("{0} + {1}", 2), "sub": ("{0} - {1}", 2), "mul": ("{0} * {1}", 2),
    "and": ("{0} & {1}", 2), "or": ("{0} | {1}", 2), "xor": ("{0} ^ {1}", 2),
    "max": ("kl.maximum({0}, {1})", 2), "min": ("kl.minimum({0}, {1})", 2),
    "select": ("kl.where({0} > {1}, {0}, {1} >> 1)", 2),
    "neg": ("-{0}", 1), "invert": ("~{0}", 1), "shr": ("{0} >> 3", 1),
}
REDUCTIONS = {"sum": "0", "max": "-1e30", "min": "1e30"}
INT_IDENTITY = {"sum": "0", "max": "-2147483647 - 1", "min": "2147483647"}


@dataclass(frozen=True)
class Chain:
    """Operations in SSA order: step i defines `v{i}` from earlier values (the leaves first)."""

    dtype: str  # "float32" or "int32"
    steps: tuple[tuple[str, tuple[str, ...]], ...]
    reduction: str | None  # None: elementwise over a 1D block; else reduced along the rows of a 2D block

    def body(self) -> list[str]:
        ops = FLOAT_OPS if self.dtype == "float32" else INT_OPS
        return [f"v{i} = " + ops[op][0].format(*args) for i, (op, args) in enumerate(self.steps)]

    @property
    def result(self) -> str:
        return f"v{len(self.steps) - 1}"


@st.composite
def chains(draw, dtype: str, reduce: bool) -> Chain:
    ops = FLOAT_OPS if dtype == "float32" else INT_OPS
    names = list(LEAVES)
    steps = []
    for i in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(sorted(ops)))
        # the newest value is always an operand, so every step feeds the result
        args = (names[-1],) + tuple(draw(st.sampled_from(names)) for _ in range(ops[op][1] - 1))
        steps.append((op, args))
        names.append(f"v{i}")
    reduction = draw(st.sampled_from(sorted(REDUCTIONS))) if reduce else None
    return Chain(dtype, tuple(steps), reduction)


ELEMENTWISE = """\
import kdsl
import kdsl.language as kl


@kdsl.kernel
def chain(x_ptr, y_ptr, z_ptr, out_ptr, n, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    mask = offs < n
    x = kl.load(x_ptr + offs, mask=mask, other=1)
    y = kl.load(y_ptr + offs, mask=mask, other=2)
    z = kl.load(z_ptr + offs, mask=mask, other=3)
{body}
    kl.store(out_ptr + offs, {result}, mask=mask)
"""

REDUCED = """\
import kdsl
import kdsl.language as kl


@kdsl.kernel
def chain(x_ptr, y_ptr, z_ptr, out_ptr, rows, cols, ROWS: kl.constexpr, COLS: kl.constexpr):
    r = kl.program_id(0) * ROWS + kl.arange(0, ROWS)
    c = kl.arange(0, COLS)
    offs = r[:, None] * cols + c[None, :]
    mask = (r[:, None] < rows) & (c[None, :] < cols)
    x = kl.load(x_ptr + offs, mask=mask, other=1)
    y = kl.load(y_ptr + offs, mask=mask, other=2)
    z = kl.load(z_ptr + offs, mask=mask, other=3)
{body}
    kept = kl.where(mask, {result}, {identity})
    kl.store(out_ptr + r, kl.{reduction}(kept, axis=1), mask=r < rows)
"""

_modules = itertools.count()


def build(chain: Chain, tmp_path) -> kdsl.Kernel:
    """The kernel for `chain`, written to a file of its own (kernels are compiled from their source)."""
    body = "\n".join("    " + line for line in chain.body())
    if chain.reduction is None:
        text = ELEMENTWISE.format(body=body, result=chain.result)
    else:
        identity = (REDUCTIONS if chain.dtype == "float32" else INT_IDENTITY)[chain.reduction]
        text = REDUCED.format(body=body, result=chain.result, identity=identity, reduction=chain.reduction)
    path = tmp_path / f"chain_{next(_modules)}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.chain


def _apply(op: str, a, b=None):
    """The operation on numpy values (float64 or wrapping int32), as kdsl defines it."""
    with np.errstate(over="ignore"):
        return {
            "add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b,
            "and": lambda: a & b, "or": lambda: a | b, "xor": lambda: a ^ b,
            "max": lambda: np.maximum(a, b), "min": lambda: np.minimum(a, b),
            "select": lambda: np.where(a > b, a, b * 0.5 if a.dtype.kind == "f" else b >> 1),
            "neg": lambda: -a, "abs": lambda: np.abs(a), "invert": lambda: ~a, "shr": lambda: a >> 3,
            "decay": lambda: np.exp(-np.abs(a)), "sin": lambda: np.sin(a), "root": lambda: np.sqrt(np.abs(a) + 1.0),
        }[op]()


def _error_bound(op: str, a, ea, b=None, eb=None):
    """How far an f32 evaluation of `op` can be from the exact value, given operands known to
    within `ea`, `eb`: the operands' errors carried through plus one rounding (a few ulps for the
    math functions, whose derivatives are at most 1 in magnitude)."""
    if op in ("add", "sub"):
        return ea + eb + F32_UNIT * (np.abs(a) + np.abs(b) + ea + eb)
    if op == "mul":
        return np.abs(a) * eb + np.abs(b) * ea + ea * eb + F32_UNIT * (np.abs(a) + ea) * (np.abs(b) + eb)
    if op in ("max", "min"):
        return np.maximum(ea, eb)
    if op == "select":
        # where the comparison is within the operands' errors, either branch may be taken
        either = np.abs(a - b) <= ea + eb
        taken = np.maximum(ea, 0.5 * eb)
        return np.where(either, np.abs(a - 0.5 * b) + taken, taken)
    if op in ("neg", "abs"):
        return ea
    return ea + MATH_ULPS * F32_UNIT * 2


def evaluate(chain: Chain, leaves: dict[str, np.ndarray]):
    """(values, error bounds) of every element of the chain's result; the bounds are 0 for integers."""
    values = dict(leaves)
    errors = {k: np.zeros(v.shape) for k, v in leaves.items()}
    for i, (op, args) in enumerate(chain.steps):
        operands = [values[a] for a in args]
        values[f"v{i}"] = _apply(op, *operands)
        if chain.dtype == "float32":
            pairs = [x for a in args for x in (values[a], errors[a])]
            errors[f"v{i}"] = _error_bound(op, *pairs)
    return values[chain.result], errors.get(chain.result, 0.0)


def _leaves(rng, shape, dtype):
    """(the kernel's inputs, their exact values: float64 for floats)."""
    arrays = {name: random_array(rng, shape, dtype) for name in LEAVES}
    return arrays, {k: v.astype(np.float64) if dtype == "float32" else v for k, v in arrays.items()}


def _check(out, expected, bound, what):
    if out.dtype.kind == "i":
        np.testing.assert_array_equal(out, expected, err_msg=what)
        return
    error = np.abs(out.astype(np.float64) - expected)
    bad = ~(error <= bound + 1e-30)
    assert not bad.any(), f"{what}: got {out[bad][:5]}, expected {expected[bad][:5]} within {np.asarray(bound)[bad][:5]}"


@SETTINGS
@given(chain=st.sampled_from(["float32", "int32"]).flatmap(lambda d: chains(d, reduce=False)),
       block=st.sampled_from([32, 128, 512]), n=st.integers(1, 700), seed=st.integers(0, 2**32 - 1))
def test_elementwise_chains_agree_with_numpy(tmp_path_factory, chain, block, n, seed):
    kernel = build(chain, tmp_path_factory.mktemp("chains"))
    rng = np.random.default_rng(seed)
    leaves, wide = _leaves(rng, n, chain.dtype)
    expected, bound = evaluate(chain, wide)
    for target in TARGETS:
        out = poisoned(n, chain.dtype)
        kernel[(kdsl.cdiv(n, block),)](leaves["x"], leaves["y"], leaves["z"], out, n, BLOCK=block, target=target)
        _check(out, expected, bound, f"{target}: {chain}")


def _reduce(reduction: str, values, errors, cols: int):
    if reduction == "sum":
        total = np.sum(values, axis=1)
        bound = np.sum(errors, axis=1) + (cols - 1) * F32_UNIT * np.sum(np.abs(values) + errors, axis=1)
        return total, bound
    pick = np.max if reduction == "max" else np.min
    return pick(values, axis=1), np.max(errors, axis=1)


@SETTINGS
@given(chain=st.sampled_from(["float32", "int32"]).flatmap(lambda d: chains(d, reduce=True)),
       rows=st.integers(1, 20), cols=st.integers(1, 64), block_rows=st.sampled_from([1, 4, 16]),
       seed=st.integers(0, 2**32 - 1))
def test_reduced_chains_agree_with_numpy(tmp_path_factory, chain, rows, cols, block_rows, seed):
    kernel = build(chain, tmp_path_factory.mktemp("chains"))
    rng = np.random.default_rng(seed)
    leaves, wide = _leaves(rng, (rows, cols), chain.dtype)
    values, errors = evaluate(chain, wide)
    if chain.dtype == "float32":
        expected, bound = _reduce(chain.reduction, values, np.broadcast_to(errors, values.shape), cols)
    else:
        reduce = {"sum": np.sum, "max": np.max, "min": np.min}[chain.reduction]
        expected = reduce(values, axis=1, dtype=np.int32) if chain.reduction == "sum" else reduce(values, axis=1)
        bound = 0.0
    block_cols = 1 << (cols - 1).bit_length()
    for target in TARGETS:
        out = poisoned(rows, chain.dtype)
        kernel[(kdsl.cdiv(rows, block_rows),)](leaves["x"], leaves["y"], leaves["z"], out, rows, cols,
                                                ROWS=block_rows, COLS=block_cols, target=target)
        _check(out, expected, bound, f"{target}: {chain}")
