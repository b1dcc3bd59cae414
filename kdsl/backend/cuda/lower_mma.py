"""`dot` on tensor cores: `mma.sync.aligned.m16n8kK.row.col`, one instruction shape per operand type.

| operands                  | accumulator | instruction                              | arch    |
|---------------------------|-------------|------------------------------------------|---------|
| f16                       | f32 or f16  | m16n8k16 .f16                            | sm_80+  |
| bf16                      | f32         | m16n8k16 .bf16                           | sm_80+  |
| f32, precision tf32       | f32         | m16n8k8 .tf32 (`cvt.rna.tf32.f32` first) | sm_80+  |
| i8                        | i32         | m16n8k32 .s8                             | sm_80+  |
| fp8 e4m3 or e5m2          | f32         | m16n8k32 .e4m3 or .e5m2 (PTX ISA 8.4)    | sm_89+  |

A dot takes this path when its operands are 2D, their types (and `input_precision` for f32:
"tf32", the default) are in the table for the target arch, M >= 16, N >= 8 and K >= the
instruction's K; others (f64, fp8 before sm_89 or into f16, batched, f32 with "ieee" or "tf32x3",
smaller blocks) stay on CUDA cores (`lower_dot`). An e4m3 x e5m2 dot reaches here as f16 x f16
(the frontend promotes the pair to f16, which holds both exactly), so it takes m16n8k16 .f16.

The accumulator, a and b take the fragment layouts of `layouts.mma_fragments` (warps tiled over
M and N); the accumulator's consumers convert from its layout as they need (a `for` loop carries
it in that layout from a `kl.zeros` start: `carried_accumulators`). The operands reach their
fragments as Triton's do: written to swizzled shared-memory tiles in vectors (or, for 16-bit
operands loaded for the dot alone along 16-byte aligned contiguous runs, copied there straight from
global memory with `cp.async`: `mma_async`, in K loops `num_stages` - 1 iterations ahead:
`mma_pipeline`), then, after a barrier, loaded with `ldmatrix` straight into the 32-bit
registers mma takes (`mma_operands`; tf32 words then rounded by `cvt.rna.tf32.f32`); a closing
barrier frees what was staged for the next use (a dot in a loop; a pipelined loop's slots are
freed by its next iteration's barrier). For each K tile in turn, each thread loads (ldmatrix) that K tile's
fragments and issues one mma per M x N tile of its warp, so registers hold one K tile's operand
fragments at a time besides the accumulator.

fp16 and bf16 products are exact in the fp32 accumulator, and tf32 and fp8 ones too (10-bit
and at most 3-bit mantissas), so the results differ from the CPU's only in the order (and the
hardware's rounding) of the fp32 sums; i8 products and their i32 sums are exact. fp8 operands
are 8-bit like i8, so they are staged and loaded (along K) as i8 ones are. ptxas makes each fp8
mma one QMMA on sm_89, but two fp16 HMMA.16816 (after converting the operands) on sm_90, whose
fp8 tensor cores only wgmma reaches: still tensor cores, at the fp16 rate.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from llvmlite import ir

from kdsl.backend.cpu.llvm_types import I32
from kdsl.backend.cuda import lower_memory, mma_async, mma_operands
from kdsl.backend.cuda.layouts import LinearLayout, mma_fragments
from kdsl.backend.cuda.lower_layout import Regs
from kdsl.backend.cuda.nvvm import barrier
from kdsl.ir.core import BlockArg, Function, Operation, Value

if TYPE_CHECKING:
    from kdsl.backend.cuda.lower import KernelLowering

WORD = 32  # bits of the registers the fragments are packed into


@dataclass(frozen=True)
class MmaInstruction:
    """One `mma.sync.aligned.m16n8kK.row.col` form: the PTX types of the operands and the accumulator."""

    operand: str
    accumulator: str
    operand_bits: int
    accumulator_bits: int
    min_sm: int = 80  # the first architecture (sm_XY as XY) with the instruction

    @property
    def pack(self) -> int:
        """Operand elements per 32-bit register."""
        return WORD // self.operand_bits

    @property
    def k(self) -> int:
        return 8 * self.pack

    @property
    def words(self) -> tuple[int, int, int]:
        """32-bit registers of a, b and the accumulator per instruction."""
        return 4, 2, 4 * self.accumulator_bits // WORD

    def asm(self) -> str:
        d, a, b, c = (", ".join(f"${i}" for i in range(start, start + n))
                      for start, n in _runs((self.words[2], *self.words)))
        types = f"{self.accumulator}.{self.operand}.{self.operand}.{self.accumulator}"
        return f"mma.sync.aligned.m16n8k{self.k}.row.col.{types} {{{d}}}, {{{a}}}, {{{b}}}, {{{c}}};"


def _runs(counts: tuple[int, ...]) -> list[tuple[int, int]]:
    out, start = [], 0
    for n in counts:
        out.append((start, n))
        start += n
    return out


FP8 = {"fp8e4nv": "e4m3", "fp8e5": "e5m2"}  # kdsl fp8 type -> PTX mma operand type

# (operand type, accumulator type) -> instruction; f32 operands only where input_precision is "tf32".
INSTRUCTIONS = {
    ("f16", "f32"): MmaInstruction("f16", "f32", 16, 32),
    ("f16", "f16"): MmaInstruction("f16", "f16", 16, 16),
    ("bf16", "f32"): MmaInstruction("bf16", "f32", 16, 32),
    ("f32", "f32"): MmaInstruction("tf32", "f32", 32, 32),
    ("i8", "i32"): MmaInstruction("s8", "s32", 8, 32),
    **{(fp8, "f32"): MmaInstruction(ptx, "f32", 8, 32, min_sm=89) for fp8, ptx in FP8.items()},
}


def instruction(op: Operation, arch: str) -> MmaInstruction | None:
    """The mma a `dot` lowers to for `arch`, or None where it stays on CUDA cores."""
    a, b, acc = (v.type for v in op.operands)
    inst = INSTRUCTIONS.get((str(a.scalar), str(acc.scalar)))
    if (inst is None or len(a.shape) != 2 or int(arch[3:5]) < inst.min_sm
            or (inst.operand == "tf32" and op.attrs["input_precision"] != "tf32")):
        return None
    (m, k), n = a.shape, b.shape[1]
    return inst if m >= 16 and n >= 8 and k >= inst.k else None


def _layouts(op: Operation, inst: MmaInstruction, num_warps: int) -> tuple[LinearLayout, LinearLayout, LinearLayout]:
    (m, k), n = op.operands[0].type.shape, op.operands[1].type.shape[1]
    return mma_fragments(m, n, k, inst.pack, inst.k, num_warps)


def carried_accumulators(fn: Function, arch: str, num_warps: int) -> dict[Value, LinearLayout]:
    """Initial values of `for`-carried accumulators of tensor-core dots, each with the accumulator
    layout: where such a value is index arithmetic (`kl.zeros`), the loop carries it in that layout,
    so no iteration converts the accumulator (`KernelLowering.block`)."""
    out = {}
    for op in fn.walk():
        inst = instruction(op, arch) if op.name == "dot" else None
        acc = op.operands[2] if inst is not None else None
        if isinstance(acc, BlockArg) and acc.index > 0 and acc.region.parent.name == "for":
            out[acc.region.parent.operands[2 + acc.index]] = _layouts(op, inst, num_warps)[2]
    return out


def async_copies(low: KernelLowering) -> set[Value]:
    """The operands of tensor-core dots copied global → shared with cp.async (`mma_async`): their
    loads are lowered by the dots."""
    users: dict[Value, list[Operation]] = {}
    for op in low.fn.walk():
        for v in op.operands:
            users.setdefault(v, []).append(op)
    return {v for op in low.fn.walk() if op.name == "dot" and instruction(op, low.arch) is not None
            for v in op.operands[:2] if mma_async.eligible(low, v, op, users)}


def _bits(b: ir.IRBuilder, v: ir.Value, bits: int) -> ir.Value:
    return v if isinstance(v.type, ir.IntType) else b.bitcast(v, ir.IntType(bits))


def _pack(b: ir.IRBuilder, values: list[ir.Value], bits: int) -> list[ir.Value]:
    """Consecutive runs of WORD // bits values as i32 registers, the first value in the low bits."""
    per = WORD // bits
    words = []
    for start in range(0, len(values), per):
        word = None
        for i, v in enumerate(values[start:start + per]):
            part = _bits(b, v, bits)
            part = part if bits == WORD else b.zext(part, I32)
            part = b.shl(part, ir.Constant(I32, bits * i)) if i else part
            word = part if word is None else b.or_(word, part)
        words.append(word)
    return words


def _unpack(b: ir.IRBuilder, words: list[ir.Value], t: ir.Type, bits: int) -> list[ir.Value]:
    """The inverse of `_pack` for values of LLVM type `t`."""
    values = []
    for word in words:
        for i in range(WORD // bits):
            part = b.lshr(word, ir.Constant(I32, bits * i)) if i else word
            part = part if bits == WORD else b.trunc(part, ir.IntType(bits))
            values.append(part if isinstance(t, ir.IntType) else b.bitcast(part, t))
    return values


def _to_tf32(b: ir.IRBuilder, words: list[ir.Value]) -> list[ir.Value]:
    """fp32 bit patterns rounded to tf32 (10 mantissa bits, ties away from zero), as mma.tf32 expects."""
    cvt = ir.InlineAsm(ir.FunctionType(I32, [I32]), "cvt.rna.tf32.f32 $0, $1;", "=r,r")
    return [b.call(cvt, [w]) for w in words]


def _staged(low: KernelLowering, a_value, b_value, a_layout, b_layout, inst: MmaInstruction, k_tiles: int):
    """Per K tile, the fragment words of each M tile of a and each N tile of b, loaded with ldmatrix
    from the operands in shared memory (`mma_operands`: staged here, or in a pipelined loop's slot,
    `mma_pipeline`); and whether anything was staged here (then a closing barrier must free it)."""
    def source(v: Value) -> Regs | mma_async.Copies | mma_operands.Tile:
        pipeline = low.pipelined.get(v)
        if pipeline is not None:
            return pipeline.tile(low, v)
        copies = mma_async.Copies.prepare(low, v.op) if v in low.async_copies else None
        if copies is None and v in low.async_copies:
            lower_memory.load(low, v.op)
        return low.block(v) if copies is None else copies
    a_source, b_source = source(a_value), source(b_value)  # both before any write to the buffer
    along_k = inst.operand_bits != 16  # ldmatrix cannot transpose 32-bit or 8-bit elements
    staged = 0  # bytes written here

    def stage(src: Regs | mma_async.Copies | mma_operands.Tile, shape: tuple[int, int], k_dim: int
              ) -> mma_operands.Tile:
        nonlocal staged
        if isinstance(src, mma_operands.Tile):
            return src
        start = -(-staged // mma_operands.BANKS_BYTES) * mma_operands.BANKS_BYTES
        if isinstance(src, mma_async.Copies):
            tile = src.issue(low, start)
        else:
            tile = mma_operands.stage(low, src, shape, start, k_dim if along_k else None)
        staged = start + tile.nbytes
        return tile
    a_tile = stage(a_source, a_value.type.shape, 1)
    b_tile = stage(b_source, b_value.type.shape, 0)
    if staged:
        low.shared.reserve(staged)
        if isinstance(a_source, mma_async.Copies) or isinstance(b_source, mma_async.Copies):
            mma_async.wait_all(low.b)
        barrier(low.b)
    na, nb, _ = inst.words
    per_a, per_b = inst.pack * na, inst.pack * nb  # registers of one tile's fragment
    m_tiles = a_layout.num_registers // (per_a * k_tiles)
    n_tiles = b_layout.num_registers // (per_b * k_tiles)

    def load(tile, layout, k_dim: int, registers: list[int]) -> list[ir.Value]:
        words = mma_operands.ldmatrix(low, tile, layout, k_dim, registers)
        return _to_tf32(low.b, words) if inst.operand == "tf32" else words

    def a_words(kk: int) -> list[list[ir.Value]]:
        return [load(a_tile, a_layout, 1, [per_a * (kk + k_tiles * i) + inst.pack * w for w in range(na)])
                for i in range(m_tiles)]

    def b_words(kk: int) -> list[list[ir.Value]]:
        pairs = range(0, n_tiles, 2)  # two N tiles to an x4 (one, x2, where the warp has one)
        tiles = [[per_b * (kk + k_tiles * j) + inst.pack * w for w in range(nb)] for j in range(n_tiles)]
        loaded = [load(b_tile, b_layout, 0, sum(tiles[j:j + 2], [])) for j in pairs]
        return [words[nb * half:][:nb] for words in loaded for half in range(len(words) // nb)]
    return a_words, b_words, bool(staged)


def dot(low: KernelLowering, op: Operation, inst: MmaInstruction) -> None:
    a_value, b_value, acc_value = op.operands
    k_tiles = a_value.type.shape[1] // inst.k
    a_layout, b_layout, acc_layout = _layouts(op, inst, low.num_warps)
    b = low.b
    na, nb, nc = inst.words
    acc = low.block(acc_value, acc_layout).values  # first: its lowering may use shared memory too
    a_words, b_words, staged = _staged(low, a_value, b_value, a_layout, b_layout, inst, k_tiles)
    acc_words = _pack(b, acc, inst.accumulator_bits)
    mma = ir.InlineAsm(ir.FunctionType(ir.LiteralStructType([I32] * nc), [I32] * (na + nb + nc)),
                       inst.asm(), ",".join(["=r"] * nc + ["r"] * (na + nb + nc)))
    for kk in range(k_tiles):
        a_tiles, b_tiles = a_words(kk), b_words(kk)
        for i, a_tile in enumerate(a_tiles):
            for j, b_tile in enumerate(b_tiles):
                tile = nc * (j + len(b_tiles) * i)
                d = b.call(mma, a_tile + b_tile + acc_words[tile:tile + nc])
                acc_words[tile:tile + nc] = [b.extract_value(d, r) for r in range(nc)]
    if staged:
        barrier(b)  # the buffer is free for the next use
    low.define(op, Regs(acc_layout, _unpack(b, acc_words, acc[0].type, inst.accumulator_bits)))
