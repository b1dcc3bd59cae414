"""Fused element loops keep the block semantics of a program: every load of a block happens
before the stores that follow it, however the input and output overlap, and loads that the
lowering loads again (instead of keeping them in buffers) see memory as it was."""
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kdsl
import kdsl.language as kl

BLOCK = 256
PAD = 600


@kdsl.kernel
def shifted_softmax(x_ptr, y_ptr, n, start, shift, BLOCK: kl.constexpr):
    offs = start + kl.arange(0, BLOCK)
    mask = offs < start + n
    x = kl.load(x_ptr + offs, mask=mask, other=-float("inf"))
    num = kl.exp(x - kl.max(x, axis=0))
    kl.store(y_ptr + shift + offs, num / kl.sum(num, axis=0), mask=mask)


@kdsl.kernel
def shifted_affine(x_ptr, w_ptr, y_ptr, n, start, shift, BLOCK: kl.constexpr):
    offs = start + kl.arange(0, BLOCK)
    mask = offs < start + n
    x = kl.load(x_ptr + offs, mask=mask, other=0.0)
    mean = kl.sum(x, axis=0) / n
    xc = kl.where(mask, x - mean, 0.0)
    w = kl.load(w_ptr + offs - start, mask=mask)
    kl.store(y_ptr + shift + offs, xc * w + 1.0, mask=mask)


def _softmax(x):
    e = np.exp(x.astype(np.float64) - x.max())
    return e / e.sum()


def _affine(x, w):
    x64 = x.astype(np.float64)
    return (x64 - x64.mean()) * w + 1.0


@settings(max_examples=25, deadline=None)
@given(shift=st.one_of(st.sampled_from([0, 1, -1, 15, -16, BLOCK - 1, BLOCK, -BLOCK]), st.integers(-PAD, PAD)),
       n=st.sampled_from([BLOCK, BLOCK - 3, 1]), seed=st.integers(0, 2**32 - 1))
def test_a_store_overlapping_the_loads_in_any_way_sees_the_old_values(shift, n, seed):
    """One buffer is both input and output, the output shifted by `shift` elements (earlier,
    later, in place, partly or wholly past the input): the results are those of loading first."""
    rng = np.random.default_rng(seed)
    memory = rng.standard_normal(BLOCK + 2 * PAD).astype(np.float32)
    w = rng.standard_normal(BLOCK).astype(np.float32)
    x = memory[PAD:PAD + n].copy()
    for kernel, expected in ((shifted_softmax, _softmax(x)), (shifted_affine, _affine(x, w[:n]))):
        data = memory.copy()
        args = (data, data, n, PAD, shift) if kernel is shifted_softmax else (data, w, data, n, PAD, shift)
        kernel[(1,)](*args, BLOCK=BLOCK)
        got = data[PAD + shift:PAD + shift + n]
        np.testing.assert_allclose(got, expected, rtol=2e-5, atol=1e-6)
        untouched = np.ones(data.size, bool)
        untouched[PAD + shift:PAD + shift + n] = False
        np.testing.assert_array_equal(data[untouched], memory[untouched])


@kdsl.kernel
def load_clear_use(a_ptr, b_ptr, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    x = kl.load(a_ptr + offs)
    total = kl.sum(x, axis=0)
    kl.store(a_ptr + offs, kl.zeros((BLOCK,), kl.float32))
    kl.store(b_ptr + offs, x / total + 1.0)


def test_a_load_used_after_a_store_to_its_memory_keeps_the_value_it_loaded():
    a = np.random.default_rng(1).random(BLOCK).astype(np.float32) + 0.5
    original = a.copy()
    b = np.full(BLOCK, np.nan, np.float32)
    load_clear_use[(1,)](a, b, BLOCK=BLOCK)
    np.testing.assert_array_equal(a, 0)
    np.testing.assert_allclose(b, original / original.astype(np.float64).sum() + 1.0, rtol=1e-6)


@kdsl.kernel
def rows_in_place(x_ptr, n_cols, BLOCK_M: kl.constexpr, BLOCK_N: kl.constexpr):
    rows = kl.program_id(0) * BLOCK_M + kl.arange(0, BLOCK_M)
    cols = kl.arange(0, BLOCK_N)
    ptrs = x_ptr + rows[:, None] * n_cols + cols[None, :]
    mask = (cols < n_cols)[None, :]
    x = kl.load(ptrs, mask=mask, other=0.0)
    kl.store(ptrs, x * 2.0 - kl.sum(x, axis=1)[:, None], mask=mask)


@pytest.mark.parametrize("n_cols", [32, 29])
def test_tiles_updated_in_place(n_cols):
    x = np.random.default_rng(n_cols).standard_normal((16, n_cols)).astype(np.float32)
    expected = x.astype(np.float64) * 2 - x.astype(np.float64).sum(axis=1, keepdims=True)
    rows_in_place[(4,)](x, n_cols, BLOCK_M=4, BLOCK_N=32)
    np.testing.assert_allclose(x, expected, rtol=1e-5, atol=1e-5)


@kdsl.kernel
def extreme_of_quotients(x_ptr, out_ptr, BLOCK: kl.constexpr):
    x = kl.load(x_ptr + kl.arange(0, BLOCK))
    q = kl.exp(x) / kl.sum(x)
    kl.store(out_ptr, kl.min(q))
    kl.store(out_ptr + 1, kl.max(q))


def test_min_and_max_of_quotients_by_a_reduction_compile_and_are_right():
    """A min or max over a division by a block's sum: the loop LLVM 22's vectoriser once aborted the
    process on (found by tests/fuzz)."""
    x = np.random.default_rng(3).uniform(1.0, 2.0, 64).astype(np.float32)
    out = np.full(2, np.nan, np.float32)
    extreme_of_quotients[(1,)](x, out, BLOCK=64)
    q = np.exp(x.astype(np.float64)) / x.astype(np.float64).sum()
    np.testing.assert_allclose(out, [q.min(), q.max()], rtol=4e-7)


@kdsl.kernel
def scaled_rows(x_ptr, w_ptr, y_ptr, n, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    mask = offs < n
    row = kl.program_id(0) * n
    x = kl.load(x_ptr + row + offs, mask=mask, other=0.0)
    w = kl.load(w_ptr + offs, mask=mask, other=0.0)
    kl.store(y_ptr + row + offs, x * w / kl.sum(x, axis=0), mask=mask)


def _program_ids_reaching(llvm: str, value: str, pid: str) -> set[str]:
    """How the kernel's program id `pid` (an argument's name) enters `value` in the LLVM text:
    "pid + 1" where through an `add i32 pid, 1`, "pid" where otherwise."""
    definitions = dict(re.findall(r'^\s*(%"[^"]+") = (.*)$', llvm, re.MULTILINE))
    found, seen, stack = set(), set(), [value]
    while stack:
        v = stack.pop()
        if v == pid:
            found.add("pid")
        elif v in definitions and v not in seen:
            seen.add(v)
            if definitions[v] == f"add i32 {pid}, 1":
                found.add("pid + 1")
            else:
                stack.extend(re.findall(r'%"[^"]+"', definitions[v]))
    return found


def test_masked_rows_prefetch_the_next_programs_row_and_stay_right():
    """A run with masks prefetches the rows that move with the program id for the next program
    (at program id + 1, never the current one): x's for reading, y's for writing, not w's (the
    same in every program); the prefetches past the last program change nothing."""
    rows, n = 5, 100
    rng = np.random.default_rng(4)
    x, w = rng.random((rows, n), dtype=np.float32) + 0.5, rng.random(n, dtype=np.float32)
    y = np.full((rows, n), np.nan, np.float32)
    llvm = scaled_rows.compile(x, w, y, n, BLOCK=128).asm["llvm"]
    kernel = next(line for line in llvm.splitlines() if line.startswith('define internal void @"kdsl.'))
    pid = re.findall(r'i32 (%"[^"]+")', kernel)[1]  # after n: program ids x, y, z, then the grid
    prefetches = re.findall(r'call void @"llvm.prefetch.p0"\(ptr (%"[^"]+"), i32 (\d)', llvm)
    assert [rw for _, rw in prefetches] == ["0", "1"]  # read x, write y
    assert [_program_ids_reaching(llvm, address, pid) for address, _ in prefetches] == [{"pid + 1"}] * 2
    scaled_rows[(rows,)](x, w, y, n, BLOCK=128)
    expected = x.astype(np.float64) * w / x.astype(np.float64).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(y, expected, rtol=1e-5)


@kdsl.kernel
def rows_from_offsets(x_ptr, starts_ptr, y_ptr, n, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    start = kl.load(starts_ptr + kl.program_id(0))
    kl.store(y_ptr + kl.program_id(0) * BLOCK + offs, kl.load(x_ptr + start + offs, mask=offs < n, other=0.0))


def test_rows_whose_pointers_are_loaded_are_not_prefetched():
    """Recomputing a pointer at the next program id would load there (past the last program, out
    of bounds): only y's row, index arithmetic of the program id, is prefetched."""
    x, starts = np.arange(64, dtype=np.float32), np.array([3, 40], np.int32)
    y = np.full((2, 16), np.nan, np.float32)
    llvm = rows_from_offsets.compile(x, starts, y, 10, BLOCK=16).asm["llvm"]
    prefetches = [line for line in llvm.splitlines() if 'call void @"llvm.prefetch.p0"' in line]
    assert [line.split(",")[1].strip() for line in prefetches] == ["i32 1"]  # write y only
    rows_from_offsets[(2,)](x, starts, y, 10, BLOCK=16)
    expected = np.where(np.arange(16) < 10, x[starts[:, None] + np.arange(16)], 0.0)
    np.testing.assert_array_equal(y, expected)
