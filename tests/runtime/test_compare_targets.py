"""`kdsl.testing.compare_targets`: agreement, the first difference and the store that wrote it."""
import numpy as np
import pytest

import kdsl
import kdsl.language as kl
from kdsl.testing import compare_targets


@kdsl.kernel
def two_halves(x_ptr, out_ptr, stride, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    x = kl.load(x_ptr + offs * stride)
    kl.store(out_ptr + offs, x * 2.0)
    kl.store(out_ptr + BLOCK + offs, x + 1.0)


class Miscompiled:
    """`two_halves` as a target that gets element `wrong` of `out` wrong would run it."""

    def __init__(self, target, wrong, by=1.0):
        self.source = two_halves.source
        self.target, self.wrong, self.by = target, wrong, by

    def __getitem__(self, grid):
        def launch(x, out, stride, target, **meta):
            two_halves[grid](x, out, stride, target=target, **meta)
            if target == self.target:
                out[self.wrong] += self.by
        return launch


def test_targets_agree_on_strided_inputs_and_nothing_leaks_into_the_arguments():
    memory = np.random.default_rng(0).standard_normal(256).astype(np.float32)
    x = memory[::4]  # every 4th element: the copies keep the stride the kernel is given
    out = np.zeros(128, np.float32)
    report = compare_targets(two_halves, (1,), x, out, 4, BLOCK=64, targets=("interpret", "cpu", "sim"))
    assert report.ok, str(report)
    assert str(report) == "interpret, cpu, sim agree"
    np.testing.assert_array_equal(out, 0)  # the caller's arrays are not written


@pytest.mark.parametrize("wrong,line", [(5, "kl.store(out_ptr + offs, x * 2.0)"),
                                        (100, "kl.store(out_ptr + BLOCK + offs, x + 1.0)")])
@pytest.mark.parametrize("targets", [("interpret", "cpu"), ("cpu", "sim")])
def test_the_first_difference_names_its_element_values_and_store(wrong, line, targets):
    x = np.arange(64, dtype=np.float32)
    out = np.zeros(128, np.float32)
    report = compare_targets(Miscompiled(targets[1], wrong), (1,), x, out, 1, BLOCK=64, targets=targets)
    assert not report.ok
    diff = report.first
    assert (diff.argument, diff.index) == ("out_ptr", (wrong,))
    expected = x[wrong] * 2 if wrong < 64 else x[wrong - 64] + 1
    assert diff.values == {targets[0]: expected, targets[1]: expected + 1}
    assert diff.store.endswith(line) and "test_compare_targets.py:" in diff.store
    assert report.mismatched == {"out_ptr": 1}
    assert f"'out_ptr'[{wrong}]" in str(report) and line in str(report)


def test_tolerance_follows_the_dtype_and_nans_match():
    x = np.array([np.nan] + [1.0] * 63, np.float32)
    out = np.zeros(128, np.float32)
    assert compare_targets(two_halves, (1,), x, out, 1, BLOCK=64, targets=("interpret", "cpu")).ok
    assert compare_targets(Miscompiled("cpu", 7, by=1e-6), (1,), x, out, 1, BLOCK=64, targets=("interpret", "cpu")).ok
    assert not compare_targets(Miscompiled("cpu", 7, by=1e-3), (1,), x, out, 1, BLOCK=64,
                               targets=("interpret", "cpu")).ok
    with pytest.raises(ValueError, match="at least two targets"):
        compare_targets(two_halves, (1,), x, out, 1, BLOCK=64, targets=("cpu",))
