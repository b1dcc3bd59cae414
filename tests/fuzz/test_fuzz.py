"""The short differential fuzzing run (CI): hypothesis writes random well-typed kernels
(tests/fuzz/kernels.py) and each runs on `cpu` and `sim` against the numpy evaluation with its
error bound; int32 results must agree exactly. `python -m tests.fuzz --minutes 30` is the long run.

These tests replace tests/language/test_differential.py: its 1D elementwise chains over masked loads
are the `flat` structure (float32 and int32 among its types, the same operations and more), and its
masked row reductions are `tile` kernels (`kl.where(mask, v, identity)` before a reduction along
axis 1, stored with a row mask)."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz import kernels as K
from tests.fuzz.kernels import check, describe, kernels

SETTINGS = settings(max_examples=8, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SEEDS = st.integers(0, 2**32 - 1)


def _agrees(spec, seed):
    failures = check(spec, seed)
    assert not failures, f"{describe(failures)}\n\n{spec.source}"


@SETTINGS
@given(spec=kernels(("flat",)), seed=SEEDS)
def test_flat_kernels_agree_with_numpy(spec, seed):
    _agrees(spec, seed)


@SETTINGS
@given(spec=kernels(("tile",)), seed=SEEDS)
def test_tile_kernels_agree_with_numpy(spec, seed):
    _agrees(spec, seed)


@settings(SETTINGS, max_examples=6)  # loop kernels compile and run longest
@given(spec=kernels(("loop",)), seed=SEEDS)
def test_loop_kernels_agree_with_numpy(spec, seed):
    _agrees(spec, seed)


def _first(predicate, structures=("flat", "tile", "loop")):
    """The first kernel of the seeded generator that `predicate` accepts (deterministic)."""
    for seed in range(10_000):
        spec = K.generate(K.RandomChooser(seed), structures)
        if predicate(spec):
            return spec, seed
    raise AssertionError("no such kernel")


def test_the_check_fails_on_a_wrong_reference(monkeypatch):
    """The checker can fail: with float additions evaluated 1e-5 (relative) off, a kernel adding floats disagrees."""
    spec, seed = _first(lambda s: any(o.node.op == "add" and o.node.dtype == o.dtype == K.F32 and o.node.text is None
                                      for o in s.outputs))
    assert not check(spec, seed, targets=("cpu",))
    arith = K.Reference.arith

    def wrong(self, op, a, b, n):
        val = arith(self, op, a, b, n)
        if op == "add" and val.dtype in K.FLOATS:
            val = K.Val(val.v * (1 + 1e-5), val.e, val.kind, val.dtype)
        return val

    monkeypatch.setattr(K.Reference, "arith", wrong)
    failures = check(spec, seed, targets=("cpu",))
    assert failures and failures[0].what == "mismatch", describe(failures)


def test_the_check_sees_masked_out_lanes_written():
    """A store without its mask writes lanes outside the array (or over other elements): caught."""
    spec, seed = _first(lambda s: s.geo.masked and s.geo.rows % s.geo.BR and s.geo.cols % s.geo.BC and any(
        o.node.kind == "RC" for o in s.outputs), ("tile",))
    assert not check(spec, seed, targets=("cpu",))
    spec._source = spec.source.replace(", mask=mask)\n", ")\n")
    failures = check(spec, seed, targets=("cpu", "sim"))
    assert {f.target for f in failures} == {"cpu", "sim"}, describe(failures)


def test_the_bounds_are_not_vacuous():
    """Float outputs are checked to within a small relative bound (a check that passes anything is no check)."""
    spec, seed = _first(lambda s: any(o.dtype == K.F32 and o.node.kind == "RC" for o in s.outputs), ("tile",))
    arrays, scalars = K.inputs(spec, seed)
    expected = K.reference(spec, arrays, scalars)
    for o in spec.outputs:
        if o.dtype == K.F32:
            ex = expected[o.name]
            v, e = ex.v[ex.written], ex.e[ex.written]
            assert np.all(e <= 1e-4 * (np.abs(v) + 1)), (o.node.name, e.max())
