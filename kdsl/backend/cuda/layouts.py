"""Linear layouts: which register of which lane of which warp holds which element of a block.

A layout of a block of shape S (every dimension a power of two) is a map from
three hardware indices -- `register`, `lane`, `warp` -- to block coordinates,
linear over F2 (Triton's LinearLayout): each bit of each index has a basis
vector (one coordinate per block dimension) and an index maps to the XOR of
the bases of its set bits. As every dimension is a power of two, XOR on each
coordinate is addition without carries, so the blocked layouts Triton writes
as sums of strides are linear maps too.

A zero basis means replication: flipping that bit reaches the same element
(lanes or warps holding copies when the block is smaller than the threads,
or registers holding copies after a broadcast). Conversions, vector widths
and reductions are computed from the bases, never special-cased by kind.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod

Basis = tuple[int, ...]
INPUTS = ("register", "lane", "warp")
WARP_SIZE = 32


def _log2(n: int) -> int:
    if n < 1 or n & (n - 1):
        raise ValueError(f"{n} is not a power of two")
    return n.bit_length() - 1


def _unit(rank: int, dim: int, value: int, size: int) -> Basis:
    """The basis `value` along `dim`, zero where it reaches past `size` (the block wraps: replication)."""
    return tuple(value if d == dim and value < size else 0 for d in range(rank))


def _xor(a: Basis, b: Basis) -> Basis:
    return tuple(x ^ y for x, y in zip(a, b))


@dataclass(frozen=True)
class LinearLayout:
    """Bases per input bit: `register[i]` is the coordinate vector of register bit i, etc."""

    shape: tuple[int, ...]
    register: tuple[Basis, ...]
    lane: tuple[Basis, ...]
    warp: tuple[Basis, ...]

    def __post_init__(self) -> None:
        for n in self.shape:
            _log2(n)
        for name in INPUTS:
            for basis in getattr(self, name):
                if len(basis) != len(self.shape) or any(not 0 <= c < n for c, n in zip(basis, self.shape)):
                    raise ValueError(f"{name} basis {basis} does not lie in a block of shape {self.shape}")

    # sizes ------------------------------------------------------------------
    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def num_registers(self) -> int:
        return 1 << len(self.register)

    @property
    def num_lanes(self) -> int:
        return 1 << len(self.lane)

    @property
    def num_warps(self) -> int:
        return 1 << len(self.warp)

    def bases(self, name: str) -> tuple[Basis, ...]:
        return getattr(self, name)

    # the map ----------------------------------------------------------------
    def combine(self, name: str, index: int) -> Basis:
        """The XOR of the `name` bases of the set bits of `index`."""
        out = (0,) * self.rank
        for bit, basis in enumerate(self.bases(name)):
            if index >> bit & 1:
                out = _xor(out, basis)
        return out

    def apply(self, reg: int, lane: int, warp: int) -> Basis:
        """The coordinates of the element that register `reg` of lane `lane` of warp `warp` holds."""
        return _xor(_xor(self.combine("register", reg), self.combine("lane", lane)), self.combine("warp", warp))

    def free_bits(self, name: str) -> tuple[int, ...]:
        """The bits of input `name` whose basis is zero: flipping them reaches a copy of the same element."""
        return tuple(bit for bit, basis in enumerate(self.bases(name)) if not any(basis))

    def vector_width(self, dim: int) -> int:
        """How many elements consecutive along `dim` each thread holds in consecutive registers."""
        width = 1
        for basis in self.register:
            if basis != _unit(self.rank, dim, width, self.shape[dim]) or width >= self.shape[dim]:
                break
            width *= 2
        return width

    def register_run(self) -> tuple[int, int]:
        """(dim, n): each aligned group of n consecutive registers holds n consecutive elements along
        `dim`, the first at a coordinate divisible by n (every other basis is a multiple of n along
        `dim`), so a group can be one vector access; n is 1 where no register runs along a dimension."""
        if not self.register or sum(c != 0 for c in self.register[0]) != 1:
            return 0, 1
        dim = next(d for d, c in enumerate(self.register[0]) if c)
        n = self.vector_width(dim)
        while n > 1 and any(b[dim] % n for name in INPUTS
                            for b in self.bases(name)[_log2(n) if name == "register" else 0:]):
            n //= 2
        return dim, n

    def same_threads(self, other: "LinearLayout") -> bool:
        """Whether every lane and warp maps the same way in both (conversions then stay in registers)."""
        return self.lane == other.lane and self.warp == other.warp


def _check_pow2(name: str, values: tuple[int, ...]) -> None:
    try:
        for v in values:
            _log2(v)
    except ValueError:
        raise ValueError(f"{name} {values} must hold powers of two") from None


def blocked(shape: tuple[int, ...], size_per_thread: tuple[int, ...], threads_per_warp: tuple[int, ...],
            warps_per_cta: tuple[int, ...], order: tuple[int, ...]) -> LinearLayout:
    """Triton's BlockedEncoding for a block of `shape`, as a linear layout.

    Along each dimension (in `order`, fastest first) a thread holds
    `size_per_thread` consecutive elements, lanes then warps step over them, and
    the tile of spt*tpw*wpc elements repeats in further registers where the
    block is larger. Where the block is smaller, coordinates wrap: lanes and
    warps past it hold copies (zero bases); registers that would hold copies
    are left out, so each thread holds each of its elements once.
    """
    rank = len(shape)
    for name, values in (("shape", shape), ("size_per_thread", size_per_thread),
                         ("threads_per_warp", threads_per_warp), ("warps_per_cta", warps_per_cta)):
        if len(values) != rank:
            raise ValueError(f"{name} {values} must have one entry per dimension of {shape}")
        _check_pow2(name, values)
    if sorted(order) != list(range(rank)):
        raise ValueError(f"order {order} is not a permutation of the dimensions of {shape}")

    def steps(count: tuple[int, ...], stride: tuple[int, ...]) -> list[Basis]:
        return [_unit(rank, d, stride[d] << i, shape[d]) for d in order for i in range(_log2(count[d]))]

    ones = (1,) * rank
    lane_stride = size_per_thread
    warp_stride = tuple(s * t for s, t in zip(size_per_thread, threads_per_warp))
    tile = tuple(w * n for w, n in zip(warp_stride, warps_per_cta))
    repeats = tuple(max(1, n // t) for n, t in zip(shape, tile))
    registers = steps(size_per_thread, ones) + steps(repeats, tile)
    return LinearLayout(tuple(shape), tuple(b for b in registers if any(b)),
                        tuple(steps(threads_per_warp, lane_stride)), tuple(steps(warps_per_cta, warp_stride)))


def default_blocked(shape: tuple[int, ...], num_warps: int, elem_bits: int,
                   order: tuple[int, ...] | None = None, full_vectors: bool = False) -> LinearLayout:
    """The layout a block gets unless an op asks for another.

    `order[0]` (the last dimension unless `order` is given) is the contiguous one; each thread
    holds up to 16 bytes along it (fewer when the block has fewer elements than that per thread,
    unless `full_vectors`: then threads beyond the block's hold copies),
    then lanes and then warps spread over the dimensions in `order`, as Triton's default
    BlockedEncoding does (a load whose pointer runs along another dimension asks for an order
    starting there, as Triton's coalescing pass does).
    """
    rank = len(shape)
    order = tuple(reversed(range(rank))) if order is None else order
    threads = WARP_SIZE * num_warps
    vector = max(1, 128 // max(elem_bits, 8))
    per_thread = min(shape[order[0]], vector, vector if full_vectors else max(1, prod(shape) // threads))
    spt = tuple(per_thread if d == order[0] else 1 for d in range(rank))
    tpw, wpc = [1] * rank, [1] * rank
    lanes_left, warps_left, threads_left = WARP_SIZE, num_warps, threads
    for d in order[:-1]:
        in_cta = min(max(threads_left, 1), max(1, shape[d] // spt[d]))
        tpw[d] = min(in_cta, lanes_left)
        wpc[d] = min(max(in_cta // tpw[d], 1), warps_left)
        lanes_left //= tpw[d]
        warps_left //= wpc[d]
        threads_left //= in_cta
    tpw[order[-1]] = lanes_left
    wpc[order[-1]] = warps_left
    return blocked(tuple(shape), spt, tuple(tpw), tuple(wpc), order)


def scalar(num_warps: int) -> LinearLayout:
    """A single value held alike by every thread: the layout of a block of rank 0."""
    return LinearLayout((), (), ((),) * _log2(WARP_SIZE), ((),) * _log2(num_warps))


# derived layouts ------------------------------------------------------------
def _map_bases(layout: LinearLayout, shape: tuple[int, ...], fn, drop_zero_registers: bool = False) -> LinearLayout:
    registers = tuple(fn(b) for b in layout.register)
    if drop_zero_registers:
        registers = tuple(b for b in registers if any(b))
    return LinearLayout(tuple(shape), registers, tuple(fn(b) for b in layout.lane), tuple(fn(b) for b in layout.warp))


def sliced(layout: LinearLayout, dim: int) -> LinearLayout:
    """The layout of the result of reducing `dim`: that coordinate is dropped; threads that held
    different elements along it now hold the same one, and registers that would be copies are left out."""
    shape = layout.shape[:dim] + layout.shape[dim + 1:]
    return _map_bases(layout, shape, lambda b: b[:dim] + b[dim + 1:], drop_zero_registers=True)


def expand_dims(layout: LinearLayout, axis: int) -> LinearLayout:
    """The same elements seen with a new dimension of size 1 at `axis`."""
    shape = layout.shape[:axis] + (1,) + layout.shape[axis:]
    return _map_bases(layout, shape, lambda b: b[:axis] + (0,) + b[axis:])


def squeeze(layout: LinearLayout, axis: int) -> LinearLayout:
    """The inverse of `expand_dims`: drop a dimension of size 1."""
    if layout.shape[axis] != 1:
        raise ValueError(f"dimension {axis} of {layout.shape} is not of size 1")
    return _map_bases(layout, layout.shape[:axis] + layout.shape[axis + 1:], lambda b: b[:axis] + b[axis + 1:])


def collapse(layout: LinearLayout, shape: tuple[int, ...]) -> LinearLayout:
    """The layout of a broadcast's source: where `shape` has 1 and `layout` does not, every basis
    is zeroed, so each register holds the source element its broadcast element comes from."""
    keep = [n != 1 or m == 1 for n, m in zip(shape, layout.shape)]
    if any(k and n != m for k, n, m in zip(keep, shape, layout.shape)):
        raise ValueError(f"{shape} does not broadcast to {layout.shape}")
    return _map_bases(layout, shape, lambda b: tuple(c if k else 0 for c, k in zip(b, keep)))


def permute(layout: LinearLayout, order: tuple[int, ...]) -> LinearLayout:
    """Dimension i of the result is dimension order[i] of `layout` (transposition when rank is 2)."""
    return _map_bases(layout, tuple(layout.shape[d] for d in order), lambda b: tuple(b[d] for d in order))


def transpose(layout: LinearLayout) -> LinearLayout:
    return permute(layout, tuple(reversed(range(layout.rank))))


def joined(layout: LinearLayout) -> LinearLayout:
    """The layout of `join`: a new minor dimension of size 2, held in a new highest register bit."""
    def extend(b: Basis) -> Basis:
        return b + (0,)
    minor = (0,) * layout.rank + (1,)
    return LinearLayout(layout.shape + (2,), tuple(map(extend, layout.register)) + (minor,),
                        tuple(map(extend, layout.lane)), tuple(map(extend, layout.warp)))


def minor_register_bit(layout: LinearLayout) -> int | None:
    """The register bit holding the minor dimension of size 2 (what `split` picks from), if one does
    and no other basis moves along that dimension."""
    unit = (0,) * (layout.rank - 1) + (1,)
    moving = [(name, bit) for name in INPUTS for bit, b in enumerate(layout.bases(name)) if b[-1]]
    if len(moving) == 1 and moving[0][0] == "register" and layout.register[moving[0][1]] == unit:
        return moving[0][1]
    return None


def unjoined(layout: LinearLayout, bit: int) -> LinearLayout:
    """The layout of one half of a `split`: the minor dimension and its register bit `bit` dropped."""
    def drop(b: Basis) -> Basis:
        return b[:-1]
    registers = tuple(drop(b) for i, b in enumerate(layout.register) if i != bit)
    return LinearLayout(layout.shape[:-1], registers, tuple(map(drop, layout.lane)), tuple(map(drop, layout.warp)))


def _row_major(coords: Basis, shape: tuple[int, ...]) -> int:
    index = 0
    for c, n in zip(coords, shape):
        index = index * n + c
    return index


def _unflatten(index: int, shape: tuple[int, ...]) -> Basis:
    coords = []
    for n in reversed(shape):
        coords.append(index % n)
        index //= n
    return tuple(reversed(coords))


def reshape(layout: LinearLayout, shape: tuple[int, ...]) -> LinearLayout:
    """The same elements, in row-major order, seen with another shape of the same size.

    With power-of-two dimensions, row-major flattening concatenates the
    coordinates' bits, so the composed map stays linear.
    """
    if prod(shape) != prod(layout.shape):
        raise ValueError(f"cannot reshape {layout.shape} to {shape}")
    return _map_bases(layout, tuple(shape), lambda b: _unflatten(_row_major(b, layout.shape), tuple(shape)))


def everywhere(num_warps: int) -> LinearLayout:
    """The layout of a scalar every thread holds: the rank-0 block a 1D block reduces or splits to."""
    return LinearLayout((), (), ((),) * _log2(WARP_SIZE), ((),) * _log2(num_warps))


def axis_in_registers(rest: LinearLayout, axis: int, size: int) -> LinearLayout:
    """The layout of a block whose dimension `axis` (of `size`) is left out by `rest`'s shape: register
    `i + size * r` holds element i along `axis` of the row through the element register r of `rest` holds."""
    def insert(basis: Basis, value: int = 0) -> Basis:
        return basis[:axis] + (value,) + basis[axis:]
    along = tuple(insert((0,) * rest.rank, 1 << i) for i in range(size.bit_length() - 1))
    return LinearLayout(insert(rest.shape, size), along + tuple(map(insert, rest.register)),
                        tuple(map(insert, rest.lane)), tuple(map(insert, rest.warp)))


# tensor-core fragments ----------------------------------------------------------
MMA_M, MMA_N = 16, 8  # the rows of a and the columns of b of one m16n8kK mma


def mma_warps(m: int, n: int, num_warps: int) -> tuple[int, int]:
    """How many warps tile M and N of an MxN accumulator (Triton's warpsPerCTA for mma v2): each
    doubling goes to the dimension with more instruction tiles per warp (M on ties) while one has
    more than one; warps left over hold copies."""
    wm = wn = 1
    while wm * wn < num_warps:
        per_m, per_n = m // (MMA_M * wm), n // (MMA_N * wn)
        if per_m >= per_n and per_m > 1:
            wm *= 2
        elif per_n > 1:
            wn *= 2
        else:
            break
    return wm, wn


def _fragments(shape: tuple[int, int], pack: int, row_tile: int, col_tile: int, row_step: int, col_step: int,
               warps: list[Basis]) -> LinearLayout:
    """The fragments of one mma operand (or the accumulator) of `shape` (rows x cols), as the PTX ISA's
    "Matrix Fragments for mma.m16n8kK" tables give them for one row_tile x col_tile instruction tile.

    With g = lane >> 2 and t = lane % 4, a thread holds rows g (and g + 8 where a tile has 16 rows)
    and, per 32-bit register, `pack` consecutive columns from `pack * t` (and those `4 * pack` further
    where a tile is wider). Tiles repeat in further registers: first along the columns (`col_step`
    apart), then along the rows (`row_step` apart): past what the warps cover."""
    rows, cols = shape
    registers = [(0, 1 << i) for i in range(_log2(pack))]
    registers += [(8, 0)] if row_tile == 16 else []
    registers += [(0, 4 * pack)] if col_tile > 4 * pack else []
    registers += [(0, col_step << i) for i in range(_log2(cols // col_step))]
    registers += [(row_step << i, 0) for i in range(_log2(rows // row_step))]
    lanes = ((0, pack), (0, 2 * pack), (1, 0), (2, 0), (4, 0))
    return LinearLayout(shape, tuple(registers), lanes, tuple(warps))


def mma_fragments(m: int, n: int, k: int, pack: int, k_tile: int, num_warps: int
                  ) -> tuple[LinearLayout, LinearLayout, LinearLayout]:
    """The layouts of a (MxK), b (KxN) and the accumulator (MxN) of a dot on m16n8k`k_tile` mmas
    whose operands hold `pack` elements per 32-bit register, warps tiled over M and N (`mma_warps`).

    Register order: a's registers run over one tile's fragment, then K tiles, then M tiles; b's
    over one tile, K tiles, N tiles; the accumulator's over one tile (c0..c3), N tiles, M tiles.
    Warp bits: those along N first, then those along M (zero in the operand that lacks the
    dimension: a warp's neighbours along N share its rows of a), then copies."""
    wm, wn = mma_warps(m, n, num_warps)
    copies = [(0, 0)] * (_log2(num_warps) - _log2(wm * wn))
    along_n = [(0, MMA_N << i) for i in range(_log2(wn))]
    along_m = [(MMA_M << i, 0) for i in range(_log2(wm))]
    zeros_n, zeros_m = [(0, 0)] * len(along_n), [(0, 0)] * len(along_m)
    a = _fragments((m, k), pack, MMA_M, k_tile, MMA_M * wm, k_tile, zeros_n + along_m + copies)
    b_t = _fragments((n, k), pack, MMA_N, k_tile, MMA_N * wn, k_tile, [(c, r) for r, c in along_n] + zeros_m + copies)
    acc = _fragments((m, n), 2, MMA_M, MMA_N, MMA_M * wm, MMA_N * wn, along_n + along_m + copies)
    return a, transpose(b_t), acc
