"""NVVM intrinsics the GPU lowering calls, and the kernel's shared memory, through llvmlite."""
from __future__ import annotations

from llvmlite import ir

from kdsl.backend.cpu.elementwise import declare
from kdsl.backend.cpu.llvm_types import I32

GLOBAL_PTR = ir.PointerType(addrspace=1)
SHARED_PTR = ir.PointerType(addrspace=3)
FULL_MASK = ir.Constant(I32, -1)


def special_register(b: ir.IRBuilder, name: str) -> ir.Value:
    """`%tid.x`, `%ctaid.y`, `%nctaid.z`, ... as an i32."""
    return b.call(declare(b.module, f"llvm.nvvm.read.ptx.sreg.{name}", I32, []), [])


def barrier(b: ir.IRBuilder) -> None:
    """`bar.sync 0`: every thread of the CTA waits here."""
    b.call(declare(b.module, "llvm.nvvm.barrier0", ir.VoidType(), []), [])


def shuffle_xor(b: ir.IRBuilder, value: ir.Value, lane_mask: int) -> ir.Value:
    """The `value` of lane `lane ^ lane_mask` (`shfl.sync.bfly`, all 32 lanes taking part).

    The shuffle moves 32 bits: narrower values travel zero-extended, 64-bit ones in two halves."""
    t = value.type
    bits = t.width if isinstance(t, ir.IntType) else {"half": 16, "float": 32, "double": 64}[str(t)]
    as_int = value if isinstance(t, ir.IntType) else b.bitcast(value, ir.IntType(bits))
    fn = declare(b.module, "llvm.nvvm.shfl.sync.bfly.i32", I32, [I32, I32, I32, I32])

    def shuffle(word: ir.Value) -> ir.Value:
        return b.call(fn, [FULL_MASK, word, ir.Constant(I32, lane_mask), ir.Constant(I32, 31)])
    if bits == 64:
        i64 = ir.IntType(64)
        low = shuffle(b.trunc(as_int, I32))
        high = shuffle(b.trunc(b.lshr(as_int, ir.Constant(i64, 32)), I32))
        moved = b.or_(b.shl(b.zext(high, i64), ir.Constant(i64, 32)), b.zext(low, i64))
    elif bits == 32:
        moved = shuffle(as_int)
    else:
        moved = b.trunc(shuffle(b.zext(as_int, I32)), ir.IntType(bits))
    return moved if isinstance(t, ir.IntType) else b.bitcast(moved, t)


def _banks_rows(nbytes: int) -> int:
    return -(-nbytes // 128) * 128


class SharedMemory:
    """The kernel's one dynamic shared-memory buffer (`extern .shared`), reused by every op that
    exchanges values through it; each use ends with a barrier. Those uses start at `floor`: below
    it lie the buffers pinned for longer (a pipelined loop's slots, `pin`). `bytes` is the most
    the kernel needs."""

    def __init__(self, module: ir.Module):
        self.base = ir.GlobalVariable(module, ir.ArrayType(ir.IntType(8), 0), "global_smem", addrspace=3)
        self.base.linkage = "external"
        self.base.align = 16
        self.bytes = 0
        self.floor = 0

    def reserve(self, nbytes: int) -> None:
        """A use of `nbytes` from the floor."""
        self.bytes = max(self.bytes, self.floor + nbytes)

    def pin(self, nbytes: int) -> int:
        """Keep `nbytes` at the floor until `unpin`: the floor rises above them (to a multiple of
        128 bytes, a row of banks); returns their start."""
        start = self.floor
        self.floor += _banks_rows(nbytes)
        self.bytes = max(self.bytes, self.floor)
        return start

    def unpin(self, nbytes: int) -> None:
        self.floor -= _banks_rows(nbytes)

    def address(self, b: ir.IRBuilder, index: ir.Value, t: ir.Type, pinned: bool = False) -> ir.Value:
        """The address of element `index` of the buffer seen as an array of `t`, from the floor
        (from the bottom where `pinned`).

        llvmlite types a global's address with its value type; the cast gives the access its own."""
        base = self.base
        if self.floor and not pinned:
            base = b.gep(base, [ir.Constant(I32, self.floor)], source_etype=ir.IntType(8))
        return b.bitcast(b.gep(base, [index], source_etype=t), ir.PointerType(t, addrspace=3))
