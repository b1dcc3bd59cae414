"""Autotuning and heuristics: the fastest config wins, choices are cached per key, arrays are reset."""
import numpy as np
import pytest

import kdsl
import kdsl.language as kl
from kdsl.testing import do_bench


SLOW_REPEAT = 10000  # so many more adds that no timing noise makes this config look faster


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    """Tuning times launches; on one thread a launch never waits for a worker that another
    process (pytest-xdist's other worker, say) has pushed off its core."""
    from kdsl.backend.cpu import threads

    monkeypatch.setattr(threads, "_num_threads", 1)


@kdsl.autotune(configs=[kdsl.Config({"REPEAT": SLOW_REPEAT}), kdsl.Config({"REPEAT": 1})], key=["n"], warmup=1,
               rep=5)
@kdsl.kernel
def accumulate(x_ptr, out_ptr, n, REPEAT: kl.constexpr, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    mask = offs < n
    acc = kl.load(out_ptr + offs, mask=mask)
    for r in range(0, REPEAT):
        acc += kl.load(x_ptr + offs, mask=mask) / REPEAT
    kl.store(out_ptr + offs, acc, mask=mask)


def test_autotune_picks_the_fastest_config_and_caches_it_per_key():
    x = np.random.default_rng(0).random(4096).astype(np.float32)
    out = np.zeros_like(x)
    accumulate[(4096 // 256,)](x, out, 4096, BLOCK=256)
    assert accumulate.best_config.kwargs == {"REPEAT": 1}
    assert len(accumulate.cache) == 1
    accumulate[(4096 // 256,)](x, out, 4096, BLOCK=256)
    assert len(accumulate.cache) == 1
    accumulate[(1,)](x, out, 100, BLOCK=256)
    assert len(accumulate.cache) == 2


@kdsl.autotune(configs=[kdsl.Config({"BLOCK": 64}), kdsl.Config({"BLOCK": 128})], key=["n"],
               reset_to_zero=["out_ptr"], warmup=1, rep=2)
@kdsl.kernel
def add_into(x_ptr, out_ptr, n, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    mask = offs < n
    kl.store(out_ptr + offs, kl.load(out_ptr + offs, mask=mask) + kl.load(x_ptr + offs, mask=mask), mask=mask)


def test_reset_to_zero_makes_tuning_runs_invisible():
    x = np.arange(1000, dtype=np.float32)
    out = np.zeros_like(x)
    add_into[lambda meta: (kdsl.cdiv(meta["n"], meta["BLOCK"]),)](x, out, 1000)
    np.testing.assert_array_equal(out, x)


def test_configs_conflicting_with_launch_arguments_are_launch_errors():
    x = np.zeros(8, np.float32)
    with pytest.raises(kdsl.LaunchError, match=r"\['BLOCK'\] are set by the autotune configs"):
        add_into[(1,)](x, x, 8, BLOCK=8)


def test_autotune_key_must_name_parameters():
    with pytest.raises(kdsl.KdslError, match=r"names \['size'\], which are not parameters"):
        kdsl.autotune(configs=[kdsl.Config({})], key=["size"])(add_into.fn)


@kdsl.heuristics({"BLOCK": lambda args: kdsl.next_power_of_2(args["n"])})
@kdsl.kernel
def copy_all(x_ptr, out_ptr, n, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    kl.store(out_ptr + offs, kl.load(x_ptr + offs, mask=offs < n), mask=offs < n)


def test_heuristics_compute_constexprs_from_arguments():
    x = np.arange(37, dtype=np.float32)
    out = np.full_like(x, np.nan)
    copy_all[(1,)](x, out, 37)
    np.testing.assert_array_equal(out, x)


def test_do_bench_reports_a_median_in_milliseconds():
    assert 0 < do_bench(lambda: sum(range(1000)), warmup=1, rep=5) < 50


class _Terminal:
    """A stderr that says it is a terminal."""

    def __init__(self):
        self.text = ""

    def isatty(self):
        return True

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def _fresh_tuner():
    return kdsl.autotune(configs=[kdsl.Config({"REPEAT": SLOW_REPEAT}), kdsl.Config({"REPEAT": 1})], key=["n"],
                         warmup=1, rep=5)(accumulate.fn)


@pytest.mark.parametrize("quiet", ["0", "1"])
def test_tuning_shows_progress_on_a_terminal_unless_quiet(monkeypatch, tmp_path, quiet):
    monkeypatch.setenv("KDSL_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("KDSL_QUIET", quiet)
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    x = np.random.default_rng(1).random(512).astype(np.float32)
    _fresh_tuner()[(2,)](x, np.zeros_like(x), 512, BLOCK=256)
    if quiet == "1":
        assert terminal.text == ""
    else:
        assert f"autotuning accumulate: config 1/2 (REPEAT: {SLOW_REPEAT}" in terminal.text
        assert terminal.text.endswith("autotuning accumulate: 2 configs timed\n")


def test_tuning_results_are_reused_from_disk(monkeypatch, tmp_path):
    monkeypatch.setenv("KDSL_CACHE_DIR", str(tmp_path))
    x = np.random.default_rng(2).random(512).astype(np.float32)
    first = _fresh_tuner()
    first[(2,)](x, np.zeros_like(x), 512, BLOCK=256)
    assert len(first.timings) == 1
    second = _fresh_tuner()  # as a new process would: nothing in memory
    out = np.zeros_like(x)
    second[(2,)](x, out, 512, BLOCK=256)
    assert second.timings == {} and second.best_config.kwargs == first.best_config.kwargs == {"REPEAT": 1}
    np.testing.assert_allclose(out, x, rtol=1e-6)
    third = _fresh_tuner()
    third[(1,)](x, np.zeros_like(x), 100, BLOCK=256)  # a new key value is tuned
    assert len(third.timings) == 1
