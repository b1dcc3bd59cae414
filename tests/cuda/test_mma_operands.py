"""The shared-memory tiles that tensor-core operands are staged in (`mma_operands.Tile`): each
element at its own 16-bit slot, and the 8 rows that one 8x8 matrix of an ldmatrix reads at one chunk
in 8 different 16-byte groups of banks (no bank conflicts), for the tile shapes dots use."""
import ctypes

import pytest
from llvmlite import ir

from kdsl.backend.cpu import elf_loader
from kdsl.backend.cpu.jit import compile_object
from kdsl.backend.cpu.llvm_types import I32
from kdsl.backend.cuda.mma_operands import BANKS_BYTES, CHUNK, Tile


def offsets(tile: Tile):
    """`tile.offset` compiled for the host: (row, col) along (1 - inner, inner) -> byte offset."""
    module = ir.Module("tile")
    fn = ir.Function(module, ir.FunctionType(I32, [I32, I32]), "offset")
    b = ir.IRBuilder(fn.append_basic_block())
    row, col = fn.args
    coords = [col, row] if tile.inner == 0 else [row, col]
    b.ret(tile.offset(b, coords))
    code = elf_loader.load(compile_object(str(module))[1], {})
    call = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_int32, ctypes.c_int32)(code.address("offset"))
    return code, call


ROWS_COLS = [(16, 8), (16, 16), (32, 32), (64, 64), (32, 128), (128, 32), (16, 256)]


@pytest.mark.parametrize("elem_bytes, rows, cols", [(e, r, c) for e in (1, 2, 4) for r, c in ROWS_COLS
                                                    if c * e >= CHUNK and r * c * e <= 1 << 15])
@pytest.mark.parametrize("inner", [0, 1])
def test_tiles_are_one_to_one_and_ldmatrix_reads_are_bank_conflict_free(elem_bytes, rows, cols, inner):
    """`rows` x `cols` along (1 - inner, inner)."""
    shape = (cols, rows) if inner == 0 else (rows, cols)
    tile = Tile(shape, inner, elem_bytes, 256)
    _engine, offset = offsets(tile)
    seen = {offset(r, c) for r in range(rows) for c in range(cols)}
    assert seen == set(range(256, 256 + tile.nbytes, elem_bytes))
    per_chunk = CHUNK // elem_bytes
    for r0 in range(0, rows, 8):
        for c in range(0, cols, per_chunk):
            groups = {offset(r, c) % BANKS_BYTES // CHUNK for r in range(r0, r0 + 8)}
            assert len(groups) == 8, (r0, c)
            assert all(offset(r, c) % CHUNK == 0 and offset(r, c + per_chunk - 1) == offset(r, c) + CHUNK - elem_bytes
                       for r in range(r0, r0 + 8))
