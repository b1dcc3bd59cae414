"""kdsl's fp16 matmul next to Triton's, in the machine code ptxas makes of each (no GPU needed).

Usage: python benchmarks/gpu_matmul_sass.py [--arch sm_80] [--tile 128x128x32] [--warps 4] [--stages 3]

One matmul (fp16 operands, fp32 accumulator, fp16 result, C = A @ B, all row-major, sizes
divisible by 16), written the same way in kdsl and in Triton, compiled for one architecture and
tile. For each it prints what ptxas reports (registers, spills, shared memory), the SASS of the
whole kernel by instruction family, and the SASS of each loop (a backward branch's range, nested
loops counted within the loop that holds them): the K loop's body is the work of one K step.
Needs ptxas; Triton (`pip install -e ".[sim-triton]"`) and nvdisasm (`pip install
nvidia-cuda-nvdisasm`, or a CUDA toolkit's) for the comparison.
"""
from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import sys

import numpy as np

import kdsl
import kdsl.language as kl
from kdsl.backend.cuda import ptxas
from kdsl.backend.cuda.sass import INSTRUCTION, disassemble, find_nvdisasm

FAMILIES = {  # SASS opcode prefix -> what it does
    "HMMA": "tensor core mma", "IMMA": "tensor core mma", "QMMA": "tensor core mma",
    "HGMMA": "tensor core wgmma", "LDSM": "ldmatrix", "LDGSTS": "cp.async",
    "LDG": "global load", "STG": "global store", "LDS": "shared load", "STS": "shared store",
    "BAR": "barrier", "FFMA": "fp32 fma", "FADD": "fp32 add", "FMUL": "fp32 mul", "HFMA2": "fp16x2 fma",
    "HADD2": "fp16x2 add", "F2F": "conversion", "F2FP": "conversion", "I2F": "conversion",
    "IMAD": "integer", "IADD3": "integer", "LEA": "integer", "LOP3": "integer", "SHF": "integer", "SGXT": "integer",
    "UIADD3": "uniform integer", "USHF": "uniform integer", "ISETP": "compare", "UISETP": "compare",
    "PRMT": "byte permute", "MOV": "move", "UMOV": "move", "CS2R": "move", "DEPBAR": "cp.async wait",
    "BRA": "branch",
}


@kdsl.kernel
def kdsl_matmul(a_ptr, b_ptr, c_ptr, M, N, K, BM: kl.constexpr, BN: kl.constexpr, BK: kl.constexpr):
    rm = kl.program_id(0) * BM + kl.arange(0, BM)
    rn = kl.program_id(1) * BN + kl.arange(0, BN)
    rk = kl.arange(0, BK)
    acc = kl.zeros((BM, BN), dtype=kl.float32)
    for k in range(0, K, BK):
        a = kl.load(a_ptr + rm[:, None] * K + (k + rk)[None, :])
        b = kl.load(b_ptr + (k + rk)[:, None] * N + rn[None, :])
        acc = kl.dot(a, b, acc)
    kl.store(c_ptr + rm[:, None] * N + rn[None, :], acc.to(kl.float16))


def kdsl_build(arch: str, tile: tuple[int, int, int], warps: int, stages: int) -> tuple[bytes, str, int]:
    """(cubin, ptxas -v report, dynamic shared memory bytes) of kdsl's matmul."""
    bm, bn, bk = tile
    size = 16 * max(tile)
    a, b, c = (np.zeros((size, size), np.float16) for _ in range(3))
    compiled = kdsl_matmul.compile(a, b, c, size, size, size, BM=bm, BN=bn, BK=bk, target="cuda", arch=arch,
                                   num_warps=warps, num_stages=stages, cubin=True)
    return compiled.asm["cubin"], compiled.asm["ptxas"], compiled.program.shared_bytes


def triton_build(arch: str, tile: tuple[int, int, int], warps: int, stages: int) -> tuple[bytes, str, int] | None:
    """(cubin, ptxas report, dynamic shared memory bytes) of the same matmul in Triton, or None
    without Triton."""
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # Triton 3.9's default, without its warning
    try:
        import triton
        import triton.language as tl
    except ImportError:
        return None

    @triton.jit
    def triton_matmul(a_ptr, b_ptr, c_ptr, M, N, K, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
        rm = tl.program_id(0) * BM + tl.arange(0, BM)
        rn = tl.program_id(1) * BN + tl.arange(0, BN)
        rk = tl.arange(0, BK)
        acc = tl.zeros((BM, BN), dtype=tl.float32)
        for k in range(0, K, BK):
            a = tl.load(a_ptr + rm[:, None] * K + (k + rk)[None, :])
            b = tl.load(b_ptr + (k + rk)[:, None] * N + rn[None, :])
            acc += tl.dot(a, b)
        tl.store(c_ptr + rm[:, None] * N + rn[None, :], acc.to(tl.float16))

    signature = {"a_ptr": "*fp16", "b_ptr": "*fp16", "c_ptr": "*fp16", "M": "i32", "N": "i32", "K": "i32"}
    aligned = {(i,): [["tt.divisibility", 16]] for i in range(6)}  # as kdsl and Triton's launcher specialise
    source = triton.compiler.ASTSource(triton_matmul, signature, dict(zip(("BM", "BN", "BK"), tile)), aligned)
    target = triton.backends.compiler.GPUTarget("cuda", int(arch[3:5]), 32)
    compiled = triton.compile(source, target=target, options={"num_warps": warps, "num_stages": stages})
    # Triton's own ptxas: its PTX may be of a newer ISA version than the one on the PATH accepts;
    # its sm_90 code uses wgmma, which needs the arch-specific sm_90a
    from triton.backends.nvidia.compiler import get_ptxas
    report = ptxas.assemble(compiled.asm["ptx"], f"{arch}a" if arch == "sm_90" else arch,
                            get_ptxas(int(arch[3:5])).path).report
    return compiled.asm["cubin"], report, compiled.metadata.shared


LABEL = re.compile(r"^\s*(\.L_\w+):")


def sass(cubin: bytes, tool: str) -> tuple[list[tuple[int, str, str]], dict[str, int]]:
    """The kernel's instructions as (address, opcode, operands), and its labels' addresses."""
    text = disassemble(cubin, tool)
    instructions, labels, pending = [], {}, []
    for line in text.splitlines():
        label = LABEL.match(line)
        if label:
            pending.append(label.group(1))
            continue
        inst = INSTRUCTION.search(line)
        if inst:
            address = int(inst.group(1), 16)
            labels.update({name: address for name in pending})
            pending = []
            instructions.append((address, inst.group(2), inst.group(3)))
    return instructions, labels


def loops(instructions, labels) -> list[tuple[int, int]]:
    """(first, last) addresses of each loop: a branch back to an earlier label, outermost first."""
    found = []
    for address, opcode, operands in instructions:
        target = re.search(r"`\((\.L_\w+)\)", operands)
        if opcode == "BRA" and target and labels.get(target.group(1), address) <= address:
            if labels[target.group(1)] < address:  # not the spin at the kernel's end
                found.append((labels[target.group(1)], address))
    return sorted(found, key=lambda r: (r[0], -r[1]))


def mix(instructions, first: int = 0, last: int = 1 << 62) -> collections.Counter:
    return collections.Counter(FAMILIES.get(op, FAMILIES.get(op[:4], FAMILIES.get(op[:3], "other")))
                               for address, op, _ in instructions if first <= address <= last)


def resources(report: str, shared: int) -> str:
    regs = re.search(r"Used (\d+) registers", report)
    spills = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", report)
    smem = re.search(r"(\d+) bytes smem", report)
    return (f"{regs.group(1) if regs else '?'} registers, "
            f"spills {'/'.join(spills.groups()) if spills else '?'} bytes (stores/loads), "
            f"shared memory {smem.group(1) if smem else 0} bytes static + {shared} dynamic")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="sm_80")
    parser.add_argument("--tile", default="128x128x32")
    parser.add_argument("--warps", type=int, default=4)
    parser.add_argument("--stages", type=int, default=3, help="num_stages of both")
    args = parser.parse_args()
    if shutil.which("ptxas") is None:
        sys.exit("ptxas is not on the PATH")
    tile = tuple(int(x) for x in args.tile.split("x"))
    builds = {"kdsl": kdsl_build(args.arch, tile, args.warps, args.stages)}
    theirs = triton_build(args.arch, tile, args.warps, args.stages)
    if theirs is not None:
        builds["triton"] = theirs
    tool = find_nvdisasm()
    print(f"fp16 matmul, tile {args.tile}, {args.warps} warps, {args.stages} stages, {args.arch}"
          + ("" if theirs is not None else " (Triton is not installed)"))
    tables = {}
    for name, (cubin, report, shared) in builds.items():
        print(f"\n{name}: {resources(report, shared)}")
        if tool is None:
            continue
        instructions, labels = sass(cubin, tool)
        tables[name] = {"kernel": mix(instructions)}
        for i, (first, last) in enumerate(loops(instructions, labels)):
            tables[name][f"loop {i} [{first:#x}, {last:#x}]"] = mix(instructions, first, last)
    if tool is None:
        print("\nnvdisasm not found (pip install nvidia-cuda-nvdisasm): no SASS mix")
        return
    families = sorted({f for t in tables.values() for c in t.values() for f in c})
    for name, table in tables.items():
        print(f"\n{name} SASS instructions by family")
        print(f"  {'family':<18}" + "".join(f"{col:>28}" for col in table))
        for family in families:
            print(f"  {family:<18}" + "".join(f"{table[col][family]:>28}" for col in table))
        print(f"  {'total':<18}" + "".join(f"{sum(table[col].values()):>28}" for col in table))
    if len(tables) == 2:
        ours, peer = (sum(tables[n]["kernel"].values()) for n in ("kdsl", "triton"))
        print(f"\nwhole kernel, kdsl / triton instructions: {ours / peer:.2f}")


if __name__ == "__main__":
    main()
