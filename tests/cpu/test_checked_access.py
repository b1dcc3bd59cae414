"""Checked accesses on the CPU (the default): an active address outside the array its pointer
derives from raises `MemoryAccessError` naming the kernel, the line, the program, the element and
its offset, before the access touches memory; masked-off lanes and in-bounds accesses run as
before; `checked=False` compiles the checks out."""
import inspect

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import kdsl
import kdsl.language as kl
from tests.helpers import poisoned


def _line_of(kernel, text: str) -> int:
    """The file line of the kernel's source line containing `text`."""
    source, first = inspect.getsourcelines(kernel.fn)
    return first + next(k for k, line in enumerate(source) if text in line)


@kdsl.kernel
def copy(src_ptr, dst_ptr, n, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    kl.store(dst_ptr + offs, kl.load(src_ptr + offs))


@kdsl.kernel
def masked_copy(src_ptr, dst_ptr, n, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    kl.store(dst_ptr + offs, kl.load(src_ptr + offs, mask=offs < n), mask=offs < n)


def test_a_load_past_the_end_names_kernel_line_program_element_and_offset():
    src, dst = np.arange(20, dtype=np.float32), np.full(32, -1.0, np.float32)
    with pytest.raises(kdsl.MemoryAccessError) as info:
        copy[(2,)](src, dst, 20, BLOCK=16)
    e = info.value
    assert (e.kernel, e.pid, e.index, e.offset, e.argument) == ("copy", (1, 0, 0), (4,), 20, "src_ptr")
    assert e.line == _line_of(copy, "kl.store(dst_ptr")
    assert "kl.store(dst_ptr + offs, kl.load(src_ptr + offs))" in str(e) and "^^^" in str(e)
    assert "'src_ptr' + 20 elements" in str(e) and "outside the array 'src_ptr' (20 elements)" in str(e)
    np.testing.assert_array_equal(dst[16:], -1.0)  # the failing program stored nothing


def test_masked_tails_and_in_bounds_launches_run_as_before():
    rng = np.random.default_rng(0)
    for n in (1, 15, 16, 17, 100):
        src, dst = rng.standard_normal(n).astype(np.float32), poisoned(n, np.float32)
        masked_copy[(kdsl.cdiv(n, 16),)](src, dst, n, BLOCK=16)
        np.testing.assert_array_equal(dst, src)


def test_a_store_past_a_view_leaves_the_memory_after_it_untouched():
    memory = np.full(48, 7.0, np.float32)
    dst = memory[:20]  # the kernel's array ends at element 20; what follows belongs to no argument
    with pytest.raises(kdsl.MemoryAccessError) as info:
        copy[(1,)](np.ones(32, np.float32), dst, 20, BLOCK=32)
    assert (info.value.argument, info.value.offset, info.value.index) == ("dst_ptr", 20, (20,))
    assert "store of 'dst_ptr' + 20 elements" in str(info.value)
    np.testing.assert_array_equal(memory, 7.0)  # nothing stored: the check precedes the store


@kdsl.kernel
def shifted_load(x_ptr, out_ptr, shift, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    kl.store(out_ptr + offs, kl.load(x_ptr + shift + offs))


def test_an_access_before_the_start_reports_a_negative_offset():
    with pytest.raises(kdsl.MemoryAccessError) as info:
        shifted_load[(1,)](np.ones(16, np.float32), np.zeros(16, np.float32), -3, BLOCK=16)
    assert (info.value.offset, info.value.index) == (-3, (0,))


def test_a_pointer_into_a_neighbouring_array_is_out_of_bounds_of_its_own():
    """Provenance, not mere addressability: `x_ptr + 16` lands in `out`, laid out right after `x`
    in one allocation, and is still outside `x`."""
    memory = np.zeros(32, np.float32)
    x, out = memory[:16], memory[16:]
    with pytest.raises(kdsl.MemoryAccessError) as info:
        shifted_load[(1,)](x, out, 16, BLOCK=16)
    assert (info.value.argument, info.value.offset) == ("x_ptr", 16)


@kdsl.kernel
def tile_copy(src_ptr, dst_ptr, rows, cols, stride, R: kl.constexpr, C: kl.constexpr):
    r = kl.arange(0, R)[:, None]
    c = kl.arange(0, C)[None, :]
    mask = (r < rows) & (c < cols)
    kl.store(dst_ptr + r * C + c, kl.load(src_ptr + r * stride + c, mask=mask, other=0.0))


def test_a_strided_tile_is_checked_element_by_element():
    src = np.arange(6 * 10, dtype=np.float32).reshape(6, 10)
    dst = np.zeros((8, 8), np.float32)
    tile_copy[(1,)](src, dst, 6, 8, 10, R=8, C=8)
    np.testing.assert_array_equal(dst[:6], src[:, :8])
    with pytest.raises(kdsl.MemoryAccessError) as info:
        tile_copy[(1,)](src, dst, 7, 8, 10, R=8, C=8)  # row 6 is past the array
    assert (info.value.index, info.value.offset) == ((6, 0), 60)


@kdsl.kernel
def gather(x_ptr, idx_ptr, out_ptr, n, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    mask = offs < n
    idx = kl.load(idx_ptr + offs, mask=mask, other=0)
    kl.store(out_ptr + offs, kl.load(x_ptr + idx, mask=mask), mask=mask)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 64), size=st.integers(0, 40), data=st.data())
def test_gathers_fail_exactly_when_an_active_index_is_outside(n, size, data):
    """The first active index outside [0, size), in element order, is the one reported; masked-off
    lanes (past n) may hold anything."""
    idx = np.array(data.draw(st.lists(st.integers(-5, size + 5), min_size=64, max_size=64)), np.int32)
    x = np.arange(size, dtype=np.float32) + 0.5
    out = poisoned(64, np.float32)
    bad = [k for k in range(n) if not 0 <= idx[k] < size]
    if not bad:
        gather[(1,)](x, idx, out, n, BLOCK=64)
        np.testing.assert_array_equal(out[:n], x[idx[:n]])
        assert np.isnan(out[n:]).all()
        return
    with pytest.raises(kdsl.MemoryAccessError) as info:
        gather[(1,)](x, idx, out, n, BLOCK=64)
    assert (info.value.argument, info.value.index, info.value.offset) == ("x_ptr", (bad[0],), idx[bad[0]])
    assert np.isnan(out).all()


@kdsl.kernel
def window(x_ptr, out_ptr, start, stride, lo, hi, ROWS: kl.constexpr, COLS: kl.constexpr):
    r = kl.arange(0, ROWS)[:, None]
    c = kl.arange(0, COLS)[None, :]
    v = kl.load(x_ptr + start + r * stride + c, mask=(c >= lo) & (c < hi), other=0.0)
    kl.store(out_ptr + r * COLS + c, v)


@settings(max_examples=60, deadline=None)
@example(rows=1, size=20, start=0, stride=0, lo=0, hi=21)  # only the element just past the end
@example(rows=1, size=20, start=-1, stride=0, lo=0, hi=5)  # only the element just before the start
@example(rows=4, size=80, start=0, stride=20, lo=0, hi=21)  # the last row's element just past the end
@given(rows=st.sampled_from([1, 4]), size=st.integers(0, 80), start=st.integers(-40, 90),
       stride=st.integers(0, 40), lo=st.integers(-2, 34), hi=st.integers(-2, 34))
def test_rows_of_consecutive_addresses_fail_exactly_when_an_active_element_is_outside(rows, size, start,
                                                                                      stride, lo, hi):
    """Rows whose ends are not both inside (a masked tail, a window past either end) test only the
    elements beyond the part inside: the first active element outside, in element order, is the
    one reported, and masked-off elements outside are not."""
    memory = np.arange(size + 100, dtype=np.float32) + 0.5
    x = memory[50:50 + size]  # elements outside the view are real memory of no argument
    out = poisoned(rows * 32, np.float32)
    offsets = start + stride * np.arange(rows)[:, None] + np.arange(32)[None, :]
    active = (np.arange(32) >= lo) & (np.arange(32) < hi)
    bad = [(r, c) for r in range(rows) for c in range(32) if active[c] and not 0 <= offsets[r, c] < size]
    launch = window[(1,)]
    if not bad:
        launch(x, out, start, stride, lo, hi, ROWS=rows, COLS=32)
        expected = np.where(active, memory[50 + np.clip(offsets, -50, size + 49)], 0.0)
        np.testing.assert_array_equal(out.reshape(rows, 32), expected)
        return
    with pytest.raises(kdsl.MemoryAccessError) as info:
        launch(x, out, start, stride, lo, hi, ROWS=rows, COLS=32)
    r, c = bad[0]
    assert (info.value.argument, info.value.index, info.value.offset) == ("x_ptr", (r, c), offsets[r, c])
    assert np.isnan(out).all()


@kdsl.kernel
def scalar_access(x_ptr, out_ptr, i):
    kl.store(out_ptr, kl.load(x_ptr + i) * 2.0)


def test_scalar_accesses_are_checked():
    x, out = np.arange(4, dtype=np.float32), np.zeros(1, np.float32)
    scalar_access[(1,)](x, out, 3)
    assert out[0] == 6.0
    with pytest.raises(kdsl.MemoryAccessError) as info:
        scalar_access[(1,)](x, out, 4)
    assert (info.value.offset, info.value.index) == (4, None)


@kdsl.kernel
def count(hist_ptr, keys_ptr, n, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    keys = kl.load(keys_ptr + offs, mask=offs < n, other=0)
    kl.atomic_add(hist_ptr + keys, 1, mask=offs < n)


def test_atomics_are_checked():
    hist = np.zeros(4, np.int32)
    count[(1,)](hist, np.array([0, 1, 1, 3], np.int32), 4, BLOCK=4)
    np.testing.assert_array_equal(hist, [1, 2, 0, 1])
    with pytest.raises(kdsl.MemoryAccessError) as info:
        count[(1,)](hist, np.array([0, 4, 1, 3], np.int32), 4, BLOCK=4)
    assert (info.value.argument, info.value.offset, info.value.index) == ("hist_ptr", 4, (1,))
    assert "atomic rmw" in str(info.value)
    np.testing.assert_array_equal(hist, [1, 2, 0, 1])  # the failing program changed nothing


@kdsl.kernel
def walk(x_ptr, out_ptr, steps, BLOCK: kl.constexpr):
    """A pointer block carried by a loop, one block further each step."""
    ptrs = x_ptr + kl.arange(0, BLOCK)
    acc = kl.zeros((BLOCK,), kl.float32)
    for _ in range(steps):
        acc += kl.load(ptrs)
        ptrs += BLOCK
    kl.store(out_ptr + kl.arange(0, BLOCK), acc)


def test_loop_carried_pointers_are_checked_in_every_iteration():
    x, out = np.ones(24, np.float32), np.zeros(8, np.float32)
    walk[(1,)](x, out, 3, BLOCK=8)
    np.testing.assert_array_equal(out, 3.0)
    with pytest.raises(kdsl.MemoryAccessError) as info:
        walk[(1,)](x, out, 4, BLOCK=8)
    assert (info.value.offset, info.value.index) == (24, (0,))


@kdsl.kernel
def pick(a_ptr, b_ptr, out_ptr, use_a, i):
    kl.store(out_ptr, kl.load(kl.where(use_a == 1, a_ptr, b_ptr) + i))


def test_a_pointer_from_either_of_two_arrays_may_be_in_either():
    a, b, out = np.full(2, 1.0, np.float32), np.full(6, 2.0, np.float32), np.zeros(1, np.float32)
    pick[(1,)](a, b, out, 0, 5)
    assert out[0] == 2.0
    with pytest.raises(kdsl.MemoryAccessError, match="'a_ptr' \\(2 elements\\) or 'b_ptr' \\(6 elements\\)"):
        pick[(1,)](a, b, out, 1, 5)


def test_views_span_what_their_strides_reach():
    base = np.arange(32, dtype=np.float32)
    out = np.zeros(8, np.float32)
    backwards = base[15::-2]  # 8 elements, the first at base[15], the last at base[1]
    reverse_read = kdsl.kernel(_reverse_read)
    reverse_read[(1,)](backwards, out, -2, BLOCK=8)
    np.testing.assert_array_equal(out, backwards)
    with pytest.raises(kdsl.MemoryAccessError):
        reverse_read[(1,)](backwards, out, 2, BLOCK=8)  # forwards from base[15]: past the view's span


def _reverse_read(x_ptr, out_ptr, stride, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    kl.store(out_ptr + offs, kl.load(x_ptr + offs * stride))


def test_an_empty_array_has_no_element_to_access():
    empty = np.zeros(0, np.float32)
    masked_copy[(1,)](empty, np.zeros(0, np.float32), 0, BLOCK=16)  # every lane masked off
    with pytest.raises(kdsl.MemoryAccessError, match="outside the array 'src_ptr' \\(0 elements\\)"):
        masked_copy[(1,)](empty, np.zeros(16, np.float32), 1, BLOCK=16)


def test_unchecked_launches_compile_the_checks_out():
    src, dst = np.arange(32, dtype=np.float32), np.zeros(32, np.float32)
    checked = copy.compile(src, dst, 32, BLOCK=16).asm["llvm"]
    unchecked = copy.compile(src, dst, 32, BLOCK=16, checked=False).asm["llvm"]
    assert "bounds.end" in checked and "bounds.end" not in unchecked
    copy[(2,)](src, dst, 32, BLOCK=16, checked=False)
    np.testing.assert_array_equal(dst, src)
    with pytest.raises(kdsl.LaunchError, match="checked must be True or False"):
        copy[(2,)](src, dst, 32, BLOCK=16, checked="no")


def test_torch_tensors_span_their_view():
    torch = pytest.importorskip("torch")
    base = torch.arange(32, dtype=torch.float32)
    out = torch.zeros(16)
    copy[(1,)](base[8:24], out, 16, BLOCK=16)
    assert torch.equal(out, base[8:24])
    with pytest.raises(kdsl.MemoryAccessError) as info:
        copy[(1,)](base[8:20], out, 16, BLOCK=16)
    assert info.value.offset == 12
