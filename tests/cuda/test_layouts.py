"""Linear layouts against Triton's blocked-layout definition, enumerated element by element."""
import itertools
from collections import Counter
from math import prod

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kdsl.backend.cuda import layouts as L

SETTINGS = settings(max_examples=60, deadline=None)


def _split_bits(draw, total_bits: int, rank: int) -> tuple[int, ...]:
    """`2**total_bits` split into `rank` power-of-two factors."""
    counts = [0] * rank
    for _ in range(total_bits):
        counts[draw(st.integers(0, rank - 1))] += 1
    return tuple(1 << c for c in counts)


@st.composite
def blocked_params(draw):
    rank = draw(st.integers(1, 3))
    shape = tuple(1 << draw(st.integers(0, 6 if rank < 3 else 4)) for _ in range(rank))
    spt = tuple(1 << draw(st.integers(0, 3)) for _ in range(rank))
    tpw = _split_bits(draw, 5, rank)
    wpc = _split_bits(draw, draw(st.integers(0, 3)), rank)
    order = tuple(draw(st.permutations(range(rank))))
    return shape, spt, tpw, wpc, order


def _digits(index: int, sizes: tuple[int, ...], order: tuple[int, ...]) -> list[int]:
    """`index` decomposed over `sizes` with dimension order[0] varying fastest."""
    out = [0] * len(sizes)
    for d in order:
        out[d] = index % sizes[d]
        index //= sizes[d]
    return out


def triton_blocked_elements(shape, spt, tpw, wpc, order, lane, warp):
    """Triton's BlockedEncoding definition: the coordinates a thread holds, register by register.

    Registers run over the size_per_thread elements, then over the repetitions of
    the CTA tile; coordinates wrap modulo the shape where the tile is larger."""
    rank = len(shape)
    tile = [spt[d] * tpw[d] * wpc[d] for d in range(rank)]
    reps = tuple(max(1, shape[d] // tile[d]) for d in range(rank))
    lane_c, warp_c = _digits(lane, tpw, order), _digits(warp, wpc, order)
    out = []
    for r in range(prod(spt) * prod(reps)):
        s, rep = _digits(r % prod(spt), spt, order), _digits(r // prod(spt), reps, order)
        out.append(tuple((rep[d] * tile[d] + warp_c[d] * spt[d] * tpw[d] + lane_c[d] * spt[d] + s[d]) % shape[d]
                         for d in range(rank)))
    return out


def _first_occurrences(items):
    seen, out = set(), []
    for x in items:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


def _all_inputs(layout):
    return itertools.product(range(layout.num_registers), range(layout.num_lanes), range(layout.num_warps))


@SETTINGS
@given(params=blocked_params())
def test_blocked_agrees_with_triton_definition(params):
    shape, spt, tpw, wpc, order = params
    layout = L.blocked(*params)
    assert layout.num_lanes == 32 and layout.num_warps == prod(wpc)
    for lane in range(32):
        for warp in range(prod(wpc)):
            expected = _first_occurrences(triton_blocked_elements(shape, spt, tpw, wpc, order, lane, warp))
            got = [layout.apply(r, lane, warp) for r in range(layout.num_registers)]
            assert got == expected, (lane, warp)


@SETTINGS
@given(params=blocked_params())
def test_every_element_is_owned_equally_often(params):
    layout = L.blocked(*params)
    owners = Counter(layout.apply(*i) for i in _all_inputs(layout))
    assert set(owners) == set(itertools.product(*(range(n) for n in layout.shape)))
    free = sum(len(layout.free_bits(name)) for name in L.INPUTS)
    assert set(owners.values()) == {1 << free}
    assert layout.free_bits("register") == ()


@SETTINGS
@given(params=blocked_params(), data=st.data())
def test_sliced_drops_the_reduced_coordinate(params, data):
    layout = L.blocked(*params)
    dim = data.draw(st.integers(0, layout.rank - 1))
    s = L.sliced(layout, dim)
    assert s.shape == layout.shape[:dim] + layout.shape[dim + 1:]
    parent = {(lane, warp): {c[:dim] + c[dim + 1:] for c in (layout.apply(r, lane, warp)
                                                            for r in range(layout.num_registers))}
              for lane in range(32) for warp in range(layout.num_warps)}
    for (lane, warp), coords in parent.items():
        got = [s.apply(r, lane, warp) for r in range(s.num_registers)]
        assert len(set(got)) == len(got) and set(got) == coords


@SETTINGS
@given(params=blocked_params(), data=st.data())
def test_permute_expand_squeeze_and_reshape_move_coordinates(params, data):
    layout = L.blocked(*params)
    order = tuple(data.draw(st.permutations(range(layout.rank))))
    axis = data.draw(st.integers(0, layout.rank))
    p, e = L.permute(layout, order), L.expand_dims(layout, axis)
    flat = L.reshape(layout, (prod(layout.shape),))
    assert L.squeeze(e, axis) == layout
    assert L.transpose(L.transpose(layout)) == layout
    for i in _all_inputs(layout):
        c = layout.apply(*i)
        assert p.apply(*i) == tuple(c[d] for d in order)
        assert e.apply(*i) == c[:axis] + (0,) + c[axis:]
        index = 0
        for x, n in zip(c, layout.shape):
            index = index * n + x
        assert flat.apply(*i) == (index,)


@SETTINGS
@given(params=blocked_params())
def test_vector_width_is_the_run_of_consecutive_registers(params):
    layout = L.blocked(*params)
    elements = _first_occurrences(triton_blocked_elements(*params, lane=0, warp=0))
    for d in range(layout.rank):
        expected = 1
        while (expected * 2 <= len(elements)
               and all(elements[r] == tuple(r if k == d else 0 for k in range(layout.rank))
                       for r in range(expected * 2))):
            expected *= 2
        assert layout.vector_width(d) == expected


@SETTINGS
@given(params=blocked_params())
def test_register_run_groups_hold_aligned_consecutive_elements(params):
    layout = L.blocked(*params)
    dim, n = layout.register_run()
    assert n >= 1 and n & (n - 1) == 0 and layout.num_registers % n == 0
    for reg, lane, warp in _all_inputs(layout):
        first = layout.apply(reg - reg % n, lane, warp)
        assert first[dim] % n == 0
        assert layout.apply(reg, lane, warp) == tuple(c + reg % n if d == dim else c for d, c in enumerate(first))


def test_default_layout_in_another_order_runs_registers_along_its_first_dimension():
    layout = L.default_blocked((32, 16), 4, 32, order=(0, 1))
    assert layout.register_run() == (0, 4) and layout.lane[0] == (4, 0)
    assert L.default_blocked((32, 16), 4, 32).register_run() == (1, 4)


@SETTINGS
@given(shape=st.lists(st.integers(0, 10), min_size=1, max_size=3).filter(lambda b: sum(b) <= 14)
       .map(lambda b: tuple(1 << x for x in b)),
       num_warps=st.sampled_from([1, 2, 4, 8]), elem_bits=st.sampled_from([8, 16, 32, 64]))
def test_default_layout_covers_the_block_with_vectors_of_at_most_16_bytes(shape, num_warps, elem_bits):
    layout = L.default_blocked(shape, num_warps, elem_bits)
    assert layout.num_lanes == 32 and layout.num_warps == num_warps
    assert layout.vector_width(len(shape) - 1) * elem_bits <= 128
    assert layout.num_registers * 32 * num_warps >= prod(shape)
    covered = {layout.apply(*i) for i in _all_inputs(layout)}
    assert len(covered) == prod(shape)


def test_default_layout_of_a_large_f32_vector_uses_16_byte_accesses_and_spreads_lanes():
    layout = L.default_blocked((1024,), 4, 32)
    assert layout.vector_width(0) == 4 and layout.num_registers == 8
    assert layout.lane[0] == (4,) and layout.warp[0] == (128,)


def test_collapse_keeps_registers_for_the_broadcast_source():
    layout = L.default_blocked((16, 64), 4, 32)
    source = L.collapse(layout, (16, 1))
    assert source.num_registers == layout.num_registers
    for i in _all_inputs(layout):
        assert source.apply(*i) == (layout.apply(*i)[0], 0)
    with pytest.raises(ValueError, match="does not broadcast"):
        L.collapse(layout, (8, 1))


def test_invalid_layouts_are_rejected():
    with pytest.raises(ValueError, match="powers of two"):
        L.blocked((12,), (1,), (32,), (1,), (0,))
    with pytest.raises(ValueError, match="does not lie"):
        L.LinearLayout((4,), ((4,),), (), ())


@SETTINGS
@given(params=blocked_params())
def test_join_adds_a_minor_register_bit_and_split_removes_it(params):
    layout = L.blocked(*params)
    j = L.joined(layout)
    bit = L.minor_register_bit(j)
    assert bit == len(layout.register) and L.unjoined(j, bit) == layout
    for reg, lane, warp in _all_inputs(j):
        assert j.apply(reg, lane, warp) == layout.apply(reg % layout.num_registers, lane, warp) + (
            reg // layout.num_registers,)


def test_split_needs_the_pair_in_one_thread():
    assert L.minor_register_bit(L.default_blocked((16, 2), 4, 32)) is None  # a lane bit holds the pair
    assert L.minor_register_bit(L.default_blocked((1024, 2), 4, 32)) == 0
