"""device_print and device_assert on the GPU path (the hidden debug buffer, `kdsl.backend.cuda.debug_buffer`),
run on the simulator: lines in launch order and program order, each element once even where lanes and
warps hold copies; the first failure in launch order with its first false element; later programs
stopped; overflow counted and reported, never written out of bounds; the PTX assembles."""
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kdsl
import kdsl.language as kl
from kdsl.backend.cuda import debug_buffer, ptxas
from tests.cuda.helpers import assemble_all_arches, lower_kernel
from tests.helpers import poisoned, random_array
from tests.language.test_debugging import _lines

DTYPES = [np.float16, np.float64, np.int8, np.uint64, np.bool_]
SHAPES = [(1, 1), (2, 4), (4, 64), (16, 32)]


def _fmt(dtype):
    return (lambda v: "%f" % v) if np.dtype(dtype).kind == "f" else (lambda v: str(int(v)))


@kdsl.kernel
def print_tile(x_ptr, M: kl.constexpr, N: kl.constexpr):
    pid = kl.program_id(1) * kl.num_programs(0) + kl.program_id(0)
    idx = kl.arange(0, M)[:, None] * N + kl.arange(0, N)[None, :]
    for i in range(2):
        kl.device_print("i", i, kl.program_id(1))
    kl.device_print("x", kl.load(x_ptr + pid * M * N + idx))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dtype=st.sampled_from(DTYPES), shape=st.sampled_from(SHAPES), num_warps=st.sampled_from([1, 4]),
       grid=st.tuples(st.integers(1, 3), st.integers(1, 2)), seed=st.integers(0, 2**32 - 1))
def test_print_lines_in_launch_order_each_element_once(capsys, dtype, shape, num_warps, grid, seed):
    m, n = shape
    rng, size = np.random.default_rng(seed), (grid[0] * grid[1], m, n)
    x = rng.random(size) < 0.5 if dtype == np.bool_ else random_array(rng, size, dtype, full_range=True)
    capsys.readouterr()
    print_tile[grid](x, M=m, N=n, num_warps=num_warps, target="sim")
    expected = []
    for py in range(grid[1]):
        for px in range(grid[0]):
            pid = (px, py, 0)
            for i in range(2):
                expected += [f"pid {pid} idx () i: (operand 0) {i}", f"pid {pid} idx () i: (operand 1) {py}"]
            expected += _lines(pid, " x: ", x[py * grid[0] + px], fmt=_fmt(dtype))
    assert capsys.readouterr().out.splitlines() == expected


@kdsl.kernel
def checked_tile(x_ptr, out_ptr, limit, M: kl.constexpr, N: kl.constexpr):
    pid = kl.program_id(1) * kl.num_programs(0) + kl.program_id(0)
    offs = pid * M * N + kl.arange(0, M)[:, None] * N + kl.arange(0, N)[None, :]
    x = kl.load(x_ptr + offs)
    kl.store(out_ptr + offs, x)
    kl.device_print("before", pid)
    assert x < limit, "tile over the limit"
    kl.store(out_ptr + offs, x + 1)
    kl.device_print("after", pid)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=st.sampled_from(SHAPES[1:]), num_warps=st.sampled_from([1, 2, 4]),
       grid=st.tuples(st.integers(1, 3), st.integers(1, 2)), data=st.data())
def test_first_failure_in_launch_order_stops_the_programs_after_it(capsys, shape, num_warps, grid, data):
    m, n = shape
    programs = grid[0] * grid[1]
    x = np.arange(programs * m * n, dtype=np.int32) % 97
    bad = data.draw(st.lists(st.integers(0, x.size - 1), min_size=1, max_size=4))
    x[bad] = 1000
    out = poisoned(x.size, np.int32)
    capsys.readouterr()
    with pytest.raises(kdsl.DeviceAssertionError) as info:
        checked_tile[grid](x, out, 500, M=m, N=n, num_warps=num_warps, target="sim")
    first = min(bad)
    failing, index = divmod(first, m * n)
    e = info.value
    assert (e.kernel, e.message) == ("checked_tile", "tile over the limit")
    assert e.pid == (failing % grid[0], failing // grid[0], 0) and e.index == divmod(index, n)
    tiles, x_tiles = out.reshape(programs, -1), x.reshape(programs, -1)
    np.testing.assert_array_equal(tiles[:failing], x_tiles[:failing] + 1)
    np.testing.assert_array_equal(tiles[failing], x_tiles[failing])
    assert (tiles[failing + 1:] == poisoned(1, np.int32)).all()
    lines = []
    for p in range(failing + 1):
        pid = f"pid ({p % grid[0]}, {p // grid[0]}, 0) idx ()"
        lines += [f"{pid} before: {p}"] + ([f"{pid} after: {p}"] if p < failing else [])
    assert capsys.readouterr().out.splitlines() == lines


@kdsl.kernel
def print_pid():
    kl.device_print("pid", kl.program_id(0))


def test_records_that_do_not_fit_are_counted_not_written(monkeypatch, capsys):
    """Room for 3 of the 5 programs' records and one word more, so that the 4th straddles the end:
    the simulator faults on any access past the buffer's end."""
    record = debug_buffer.RECORD_HEAD + 2
    monkeypatch.setattr(debug_buffer, "BUFFER_BYTES", (debug_buffer.HEADER_WORDS + 3 * record + 1) * 4)
    capsys.readouterr()
    with pytest.warns(RuntimeWarning, match=re.escape("kernel 'print_pid': 2 device_print records did not fit")):
        print_pid[(5,)](target="sim")
    assert capsys.readouterr().out.splitlines() == [f"pid ({p}, 0, 0) idx () pid: {p}" for p in range(3)]


@kdsl.kernel
def print_then_assert(x_ptr, limit, BLOCK: kl.constexpr):
    x = kl.load(x_ptr + kl.arange(0, BLOCK))
    kl.device_print("x", x)
    assert x < limit, "x over the limit"


def test_partly_recorded_prints_write_no_lines_and_asserts_still_report(monkeypatch, capsys):
    """Room for half of the block print's records (one per thread holding elements)."""
    x = np.arange(64, dtype=np.int32)
    lowered, _, _ = lower_kernel(print_then_assert, (x, 10), {"BLOCK": 64}, num_warps=2)
    site = lowered.debug_sites[0]
    records = 64 // site.registers[0]
    room = debug_buffer.HEADER_WORDS + records // 2 * site.record_words
    monkeypatch.setattr(debug_buffer, "BUFFER_BYTES", room * debug_buffer.WORD_BYTES)
    capsys.readouterr()
    with pytest.warns(RuntimeWarning, match=f"{records - records // 2} device_print records"):
        with pytest.raises(kdsl.DeviceAssertionError) as info:
            print_then_assert[(1,)](x, 10, BLOCK=64, num_warps=2, target="sim")
    assert (info.value.pid, info.value.index, info.value.message) == ((0, 0, 0), (10,), "x over the limit")
    assert capsys.readouterr().out == ""


@kdsl.kernel
def plain_copy(x_ptr, out_ptr):
    offs = kl.arange(0, 8)
    kl.store(out_ptr + offs, kl.load(x_ptr + offs))


def _entry_params(ptx: str, name: str) -> list[str]:
    signature = re.search(rf"\.entry {name}\((.*?)\)", ptx, re.S).group(1)
    return re.findall(r"\.param \.(\w+)", signature)


def test_only_kernels_with_prints_or_asserts_take_the_hidden_buffer():
    x = np.ones(8, np.float32)
    plain, ptx, _ = lower_kernel(plain_copy, (x, x), {})
    assert plain.debug_sites == () and _entry_params(ptx, "plain_copy") == ["u64", "u64"]
    checked, ptx, _ = lower_kernel(checked_tile, (x, x, 1.0), {"M": 2, "N": 4})
    assert _entry_params(ptx, "checked_tile") == ["u64", "u64", "f32", "u64"]
    assert [type(s).__name__ for s in checked.debug_sites] == ["PrintSite", "AssertSite", "PrintSite"]


@pytest.mark.skipif(not ptxas.available(), reason="ptxas is not on the PATH")
@pytest.mark.parametrize("dtype", DTYPES)
def test_debug_kernels_assemble_for_sm80_and_sm90(dtype):
    x = np.ones((2, 4), dtype)
    assemble_all_arches(print_tile, (x,), {"M": 2, "N": 4})
    assemble_all_arches(checked_tile, (x, x, 1), {"M": 16, "N": 32}, num_warps=2)
