"""Simulated instructions per second of kdsl.sim on nvcc-compiled kernels.

Usage: python benchmarks/sim_throughput.py [--repeat N]
Needs nvcc on the PATH. Prints, per kernel, the median wall time of N launches
and the warp- and thread-instructions simulated per second.
"""
from __future__ import annotations

import argparse
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "sim"))

import kdsl.sim as sim  # noqa: E402
from conftest import KERNELS  # noqa: E402
from test_tensorcore import TILED  # noqa: E402


def compile_ptx(source: str) -> str:
    with tempfile.TemporaryDirectory() as d:
        cu, ptx = pathlib.Path(d, "k.cu"), pathlib.Path(d, "k.ptx")
        cu.write_text(source)
        subprocess.run(["nvcc", "-arch=sm_80", "-ptx", str(cu), "-o", str(ptx)], check=True)
        return ptx.read_text()


def cases(rng: np.random.Generator):
    a = rng.standard_normal((128, 64)).astype(np.float16)
    bt = rng.standard_normal((128, 64)).astype(np.float16)
    yield ("mma_f16 128x128x64, 1 CTA x 4 warps", TILED, "mma_f16", 1, 128,
           lambda: [a, bt, np.zeros((128, 128), np.float32), ("s32", 64)])
    x = rng.random(1 << 16, np.float32)
    yield ("saxpy n=65536, 256 CTAs x 256", KERNELS, "saxpy", 256, 256,
           lambda: [x, x, np.zeros_like(x), ("f32", 2.0), ("s32", x.size)])
    yield ("warp_sum n=65536, 64 CTAs x 1024", KERNELS, "warp_sum", 64, 1024,
           lambda: [x, np.zeros(1, np.float32), ("s32", x.size)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("nvcc") is None:
        sys.exit("nvcc is not on the PATH")
    rng = np.random.default_rng(0)
    modules: dict[str, sim.Module] = {}
    for title, source, entry, grid, block, make_args in cases(rng):
        if source not in modules:
            modules[source] = sim.load_module(compile_ptx(source))
        mod = modules[source]
        times, stats = [], None
        for _ in range(args.repeat):
            launch_args = make_args()
            t0 = time.perf_counter()
            stats = mod.launch(entry, grid, block, launch_args)
            times.append(time.perf_counter() - t0)
        wall = float(np.median(times))
        print(f"{title:40s} median {wall * 1e3:8.1f} ms  "
              f"{stats.warp_instructions / wall / 1e3:8.1f} k warp-instr/s  "
              f"{stats.thread_instructions / wall / 1e6:7.2f} M thread-instr/s  "
              f"({stats.warp_instructions} warp-instr)")


if __name__ == "__main__":
    main()
