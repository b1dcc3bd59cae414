"""Operands of tensor-core dots through shared memory and `ldmatrix`, as Triton stages them.

Each thread writes the elements of an operand it holds (in the operand's own layout, copies once)
to a shared-memory tile in vectors as long as its layout's register runs allow, up to 16 bytes.
For 16-bit operands the tile's rows run along the dimension the thread's registers run along
(`register_run`), so those vectors are contiguous; for 32-bit (tf32) and 8-bit ones they run
along K, as ldmatrix can transpose only 16-bit elements (where the registers run along another
dimension, each element is stored alone). The 16-byte chunks of each row are XOR-swizzled by row
(Triton's swizzled shared layout: `per_phase` rows share a phase, `max_phase` phases), so the
eight rows one 8x8 matrix of an ldmatrix reads at one chunk fall in eight different 16-byte
groups of banks.

After a barrier, one `ldmatrix.sync.aligned.m8n8.x4` loads a warp's fragments of one M tile of a,
or of two N tiles of b (x2: one, where the warp has one), straight into the 32-bit registers mma takes: lane l gives the address of row
l % 8 of matrix l / 8, whose origins are the coordinates of the fragment registers the matrices
fill (`mma_fragments`). Where the tile's rows run along K, ldmatrix reads the fragments as they
are (an 8x8 matrix of b16 is 8 rows of 4 tf32 or 16 int8 elements, which the m16n8k8 tf32 and
m16n8k32 s8 fragments lay out as the b16 ones); where they run along M (for a) or N (for b),
`.trans` transposes each 8x8 matrix.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from llvmlite import ir

from kdsl.backend.cpu.elementwise import declare
from kdsl.backend.cpu.llvm_types import I8, I32
from kdsl.backend.cuda.layouts import LinearLayout
from kdsl.backend.cuda.lower_layout import Regs, type_bytes
from kdsl.backend.cuda.nvvm import SHARED_PTR, SharedMemory

if TYPE_CHECKING:
    from kdsl.backend.cuda.lower import KernelLowering

CHUNK = 16  # bytes: one row of an ldmatrix matrix, the widest vector store
BANKS_BYTES = 128  # one row of the 32 four-byte banks


def _log2(n: int) -> int:
    return n.bit_length() - 1


@dataclass(frozen=True)
class Tile:
    """A 2D operand of `shape` in shared memory from byte `start`: rows along dimension 1 - `inner`,
    each row contiguous along `inner`, its 16-byte chunks XOR-swizzled by row."""

    shape: tuple[int, int]
    inner: int
    elem_bytes: int
    start: int | ir.Value  # an i32 value for a slot of a pipelined loop's (`mma_pipeline`)
    pinned: bool = False  # `start` counts from the bottom of shared memory (`SharedMemory.pin`)

    @property
    def row_bytes(self) -> int:
        return self.shape[self.inner] * self.elem_bytes

    @property
    def per_phase(self) -> int:
        """Rows sharing one swizzle phase: those that one 128-byte row of banks holds."""
        return max(1, BANKS_BYTES // self.row_bytes)

    @property
    def max_phase(self) -> int:
        return max(1, min(BANKS_BYTES // CHUNK // self.per_phase, self.row_bytes // CHUNK))

    @property
    def nbytes(self) -> int:
        return self.shape[0] * self.shape[1] * self.elem_bytes

    def offset(self, b: ir.IRBuilder, coords: list[ir.Value]) -> ir.Value:
        """The byte offset in the buffer of the element at `coords` (i32 values)."""
        row, col = coords[1 - self.inner], coords[self.inner]
        per_chunk = CHUNK // self.elem_bytes

        def const(n: int) -> ir.Constant:
            return ir.Constant(I32, n)
        phase = b.and_(b.lshr(row, const(_log2(self.per_phase))), const(self.max_phase - 1))
        chunk = b.xor(b.lshr(col, const(_log2(per_chunk))), phase)
        within = b.mul(b.and_(col, const(per_chunk - 1)), const(self.elem_bytes))
        offset = b.add(b.mul(row, const(self.row_bytes)), b.add(b.mul(chunk, const(CHUNK)), within))
        return b.add(offset, self.start if isinstance(self.start, ir.Value) else const(self.start))

    def address(self, shared: SharedMemory, b: ir.IRBuilder, coords: list[ir.Value]) -> ir.Value:
        """The address in shared memory of the element at `coords`, as an i8 pointer."""
        return shared.address(b, self.offset(b, coords), I8, pinned=self.pinned)


def stage(low: KernelLowering, regs: Regs, shape: tuple[int, int], start: int, inner: int | None) -> Tile:
    """Write the elements of block `regs` (of `shape`) this thread holds to a `Tile` from byte `start`,
    in vectors, its rows along `inner` (where None: the dimension the registers run along)."""
    b = low.b
    layout = regs.layout
    elem = regs.values[0].type
    run_dim, run = layout.register_run()
    inner = run_dim if inner is None else inner
    run = min(run, CHUNK // type_bytes(elem)) if run_dim == inner else 1
    tile = Tile(shape, inner, type_bytes(elem), start)
    assert tile.row_bytes >= CHUNK, "an ldmatrix row is 16 bytes of one tile row"
    copies = sum(1 << bit for bit in layout.free_bits("register"))
    vector = ir.VectorType(elem, run)
    for r, coords in enumerate(low.coordinates(layout)):
        if r % run or r & copies:
            continue
        data = ir.Constant(vector, ir.Undefined)
        for i, v in enumerate(regs.values[r:r + run]):
            data = b.insert_element(data, v, ir.Constant(I32, i))
        address = b.bitcast(tile.address(low.shared, b, coords), ir.PointerType(vector, addrspace=3))
        b.store(data, address, align=run * tile.elem_bytes)
    return tile


def ldmatrix(low: KernelLowering, tile: Tile, layout: LinearLayout, k_dim: int, registers: list[int]
             ) -> list[ir.Value]:
    """The 32-bit fragment words at `registers` of `layout` (each the first of a pair of 16-bit
    elements; 2 or 4 of them, their origins linear: the fourth is the XOR of the other three) in one
    `ldmatrix.sync.aligned.m8n8.x2/x4` from `tile`."""
    b = low.b
    origins = [layout.combine("register", r) for r in registers]
    steps = [tuple(x ^ y for x, y in zip(o, origins[0])) for o in origins[1:3]]
    assert len(origins) == 2 or origins[3] == tuple(x ^ y for x, y in zip(origins[2], steps[0]))
    steps += [(0, 0)] * (2 - len(steps))
    outer = 1 - tile.inner
    rows = tuple(tuple(1 << i if d == outer else 0 for d in range(2)) for i in range(3))
    lanes = LinearLayout(layout.shape, (), rows + tuple(steps), layout.warp)
    coords = [b.xor(c, ir.Constant(I32, o)) for c, o in zip(low.coordinates(lanes)[0], origins[0])]
    address = b.bitcast(tile.address(low.shared, b, coords), SHARED_PTR)
    trans = ".trans" if tile.inner != k_dim else ""
    count = len(registers)
    fn = declare(b.module, f"llvm.nvvm.ldmatrix.sync.aligned.m8n8.x{count}{trans}.b16.p3",
                 ir.LiteralStructType([I32] * count), [SHARED_PTR])
    loaded = b.call(fn, [address])
    return [b.extract_value(loaded, i) for i in range(count)]
