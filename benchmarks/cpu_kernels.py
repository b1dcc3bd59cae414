"""The tutorial workloads on the CPU: kdsl side by side with numpy, torch and numba, in one process.

    python -m benchmarks.cpu_kernels [--quick] [--rounds N] [--plots DIR]

Prints the machine's limits first (memory bandwidth from a large `numpy.copyto`, bytes read
plus written; numpy's BLAS matmul rate), then per workload each implementation's median time
(over N rounds, default 3, 1 with --quick, that take the implementations in turn, so that a
slow spell of the machine does not fall on one of them only),
its rate, the fraction of the limit it reaches and kdsl's speed-up over it (>1: kdsl is
faster), with kdsl twice: as launched by default, its memory accesses checked against the
arrays' bounds, and with `checked=False` ("kdsl unchecked"; the line under the table gives the
checks' cost), then compile latency: kdsl's cold compile, a fresh process's first result with a warm
on-disk cache, `import kdsl`, and numba's cold `@njit` for comparison (kdsl's disk cache is off
in this process, so its compiles are cold). Every result is checked
against numpy before it is timed. Everything runs on the same number of threads: kdsl's
(`KDSL_NUM_THREADS`, default the CPUs this process may use), also given to torch, numba and
BLAS. A bar chart per workload goes to DIR (default benchmarks/results). torch, numba and
matplotlib are optional (`pip install -e ".[bench]"`).
"""
from __future__ import annotations

import os
import sys

THREADS = int(os.environ.get("KDSL_NUM_THREADS") or len(os.sched_getaffinity(0)))
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, str(THREADS))
os.environ["KDSL_CACHE_DIR"] = "off"  # compile times measured here are cold ones

import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import textwrap  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402

import kdsl  # noqa: E402
import kdsl.language as kl  # noqa: E402
from kdsl.testing import do_bench  # noqa: E402


@kdsl.kernel
def add(x_ptr, y_ptr, out_ptr, n, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    mask = offs < n
    kl.store(out_ptr + offs, kl.load(x_ptr + offs, mask=mask) + kl.load(y_ptr + offs, mask=mask), mask=mask)


@kdsl.kernel
def softmax(out_ptr, in_ptr, n_cols, BLOCK: kl.constexpr):
    row = kl.program_id(0)
    offs = kl.arange(0, BLOCK)
    mask = offs < n_cols
    x = kl.load(in_ptr + row * n_cols + offs, mask=mask, other=-float("inf"))
    num = kl.exp(x - kl.max(x, axis=0))
    kl.store(out_ptr + row * n_cols + offs, num / kl.sum(num, axis=0), mask=mask)


@kdsl.kernel
def layer_norm(x_ptr, w_ptr, b_ptr, y_ptr, n_cols, eps, BLOCK: kl.constexpr):
    row = kl.program_id(0)
    cols = kl.arange(0, BLOCK)
    mask = cols < n_cols
    x = kl.load(x_ptr + row * n_cols + cols, mask=mask, other=0.0)
    mean = kl.sum(x, axis=0) / n_cols
    xc = kl.where(mask, x - mean, 0.0)
    rstd = 1 / kl.sqrt(kl.sum(xc * xc, axis=0) / n_cols + eps)
    w = kl.load(w_ptr + cols, mask=mask)
    b = kl.load(b_ptr + cols, mask=mask)
    kl.store(y_ptr + row * n_cols + cols, xc * rstd * w + b, mask=mask)


@kdsl.autotune(configs=[kdsl.Config({"BM": bm, "BN": bn, "BK": bk})
                        for bm, bn, bk in ((64, 64, 32), (128, 128, 32), (64, 128, 64), (32, 128, 64))],
               key=["M", "N", "K"], warmup=5, rep=50)
@kdsl.kernel
def matmul(a_ptr, b_ptr, c_ptr, bias_ptr, M, N, K, BIAS_RELU: kl.constexpr,
           BM: kl.constexpr, BN: kl.constexpr, BK: kl.constexpr):
    """C = A @ B (row-major, sizes multiples of the tiles), optionally relu(C + bias)."""
    rm = kl.program_id(0) * BM + kl.arange(0, BM)
    rn = kl.program_id(1) * BN + kl.arange(0, BN)
    rk = kl.arange(0, BK)
    acc = kl.zeros((BM, BN), dtype=kl.float32)
    for k in range(0, K, BK):
        a = kl.load(a_ptr + rm[:, None] * K + (k + rk)[None, :])
        b = kl.load(b_ptr + (k + rk)[:, None] * N + rn[None, :])
        acc = kl.dot(a, b, acc)
    if BIAS_RELU:
        acc = kl.maximum(acc + kl.load(bias_ptr + rn)[None, :], 0.0)
    kl.store(c_ptr + rm[:, None] * N + rn[None, :], acc)


def _optional(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError:
        return None


torch = _optional("torch")
numba = _optional("numba")


def _numba_kernels() -> dict[str, Callable]:
    """The peers a numba user writes: parallel loops over rows (or elements)."""
    jit = numba.njit(parallel=True, fastmath=True, cache=False)

    @jit
    def vector_add(x, y, out):
        for i in numba.prange(x.size):
            out[i] = x[i] + y[i]

    @jit
    def row_softmax(x, out):
        for i in numba.prange(x.shape[0]):
            e = np.exp(x[i] - x[i].max())
            out[i] = e / e.sum()

    @jit
    def row_layer_norm(x, w, b, out, eps):
        for i in numba.prange(x.shape[0]):
            mean = x[i].mean()
            xc = x[i] - mean
            out[i] = xc / np.sqrt((xc * xc).mean() + eps) * w + b

    return {"vector_add": vector_add, "softmax": row_softmax, "layer_norm": row_layer_norm}


UNCHECKED = "kdsl unchecked"


@dataclass
class Result:
    workload: str
    unit: str
    limit: float
    rates: dict[str, float]
    times: dict[str, float]


def measure(workload: str, work: float, unit: str, limit: float, runs: dict[str, Callable[[], object]],
            rounds: int, note: str = "") -> Result:
    """Median times of `runs` (each doing `work` bytes or flops) over `rounds` rounds that take
    them in turn, printed against `limit`."""
    timed = [{impl: do_bench(fn, warmup=50, rep=400) for impl, fn in runs.items()} for _ in range(rounds)]
    times = {impl: statistics.median(r[impl] for r in timed) for impl in runs}
    rates = {impl: work / ms / 1e6 for impl, ms in times.items()}
    print(f"\n{workload}{note}")
    for impl, ms in times.items():
        print(f"  {impl:<15} {ms:9.3f} ms  {rates[impl]:7.1f} {unit:<7} {rates[impl] / limit:5.2f} of the limit"
              f"   kdsl speed-up x{ms / times['kdsl']:5.2f}")
    print(f"  checked accesses cost {100 * (times['kdsl'] / times[UNCHECKED] - 1):+.1f}% of kdsl's time")
    return Result(workload, unit, limit, rates, times)


def kdsl_runs(launch: Callable[..., object]) -> dict[str, Callable[[], object]]:
    """kdsl's entries for a workload: `launch()` (accesses checked, the default) and
    `launch(checked=False)`; each is run once here, so that compiling is not timed, the
    unchecked one first, so that the result checked against numpy is the default's."""
    runs = {"kdsl": lambda: launch(), UNCHECKED: lambda: launch(checked=False)}
    for run in reversed(runs.values()):
        run()
    return runs


def plot(result: Result, directory: Path) -> Path | None:
    matplotlib = _optional("matplotlib")
    if matplotlib is None:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    names = list(result.rates)
    ax.bar(names, [result.rates[n] for n in names], color=["C0" if n.startswith("kdsl") else "C7" for n in names])
    ax.axhline(result.limit, color="C3", linestyle="--", label=f"machine limit {result.limit:.0f} {result.unit}")
    ax.set_ylabel(result.unit)
    ax.set_title(result.workload, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / ("".join(c if c.isalnum() else "_" for c in result.workload.lower()).strip("_") + ".png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def bandwidth_gbs(n: int) -> float:
    src, dst = np.ones(n, np.float32), np.empty(n, np.float32)
    return 2 * src.nbytes / do_bench(lambda: np.copyto(dst, src), warmup=50, rep=400) / 1e6


def blas_gflops(n: int) -> float:
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    return 2 * n**3 / do_bench(lambda: a @ a, warmup=50, rep=400) / 1e6


def cold_compile_ms(kernel: Any, *args: Any, **meta: Any) -> float:
    """The time `kernel.compile` takes with nothing cached (the disk cache is off here)."""
    start = time.perf_counter()
    kernel.compile(*args, **meta)
    return (time.perf_counter() - start) * 1e3


def median_cold_compile_ms(kernel: Any, *args: Any, **meta: Any) -> float:
    """The median of five cold compiles, each by a new `Kernel` of the same function (a kernel
    keeps what it compiled)."""
    return statistics.median(cold_compile_ms(kdsl.Kernel(kernel.fn), *args, **meta) for _ in range(5))


FRESH_PROCESS = textwrap.dedent("""
    import time
    start = time.perf_counter()
    import kdsl
    imported = time.perf_counter()
    import kdsl.language as kl
    import numpy as np

    @kdsl.kernel
    def softmax(out_ptr, in_ptr, n_cols, BLOCK: kl.constexpr):
        offs = kl.arange(0, BLOCK)
        x = kl.load(in_ptr + kl.program_id(0) * n_cols + offs, mask=offs < n_cols, other=-float("inf"))
        num = kl.exp(x - kl.max(x, axis=0))
        kl.store(out_ptr + kl.program_id(0) * n_cols + offs, num / kl.sum(num, axis=0), mask=offs < n_cols)

    x = np.random.default_rng(0).standard_normal((4096, 1024), dtype=np.float32)
    out = np.empty_like(x)
    begin = time.perf_counter()
    softmax[(4096,)](out, x, 1024, BLOCK=1024)
    done = time.perf_counter()
    print((imported - start) * 1e3, (done - begin) * 1e3)
""")


def fresh_process_ms() -> tuple[float, float]:
    """(`import kdsl`, first softmax result after it) in a fresh process with a warm disk cache
    (and Python's bytecode cache): the medians of five processes, after one that fills them."""
    with tempfile.TemporaryDirectory() as cache:
        script = Path(cache) / "first_softmax.py"
        script.write_text(FRESH_PROCESS)
        env = {**os.environ, "KDSL_CACHE_DIR": str(Path(cache) / "entries")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed Python packages are: compiled once
        runs = [subprocess.run([sys.executable, str(script)], env=env, check=True, capture_output=True,
                               text=True).stdout.split() for _ in range(6)]
    imports, firsts = zip(*((float(a), float(b)) for a, b in runs[1:]))
    return float(np.median(imports)), float(np.median(firsts))


def main(quick: bool = False, plots: Path = Path(__file__).parent / "results", rounds: int | None = None) -> None:
    rounds = rounds or (1 if quick else 3)
    kdsl.set_num_threads(THREADS)
    if torch is not None:
        torch.set_num_threads(THREADS)
    peers = _numba_kernels() if numba is not None else {}
    rng = np.random.default_rng(0)
    print(f"threads: {THREADS} (kdsl, torch, numba, BLAS)   peers: numpy"
          + (", torch" if torch else "") + (", numba" if numba else ""))
    bandwidth = bandwidth_gbs(1 << (24 if quick else 26))
    n_mm = 512 if quick else 1024
    blas = blas_gflops(n_mm)
    print(f"machine limits: memory bandwidth {bandwidth:.1f} GB/s (numpy.copyto, read + write), "
          f"BLAS {blas:.1f} GFLOP/s (numpy {n_mm}^3 fp32 matmul)")
    results = []

    n = 1 << (20 if quick else 24)
    x, y = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
    out = np.full_like(x, np.nan)
    compile_ms = cold_compile_ms(add, x, y, out, n, BLOCK=4096)
    runs = kdsl_runs(lambda **checked: add[(kdsl.cdiv(n, 4096),)](x, y, out, n, BLOCK=4096, **checked))
    np.testing.assert_array_equal(out, x + y)
    runs["numpy"] = lambda: np.add(x, y, out=out)
    if torch is not None:
        tx, ty, tout = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(out)
        runs["torch"] = lambda: torch.add(tx, ty, out=tout)
    if "vector_add" in peers:
        peers["vector_add"](x, y, out)
        runs["numba"] = lambda: peers["vector_add"](x, y, out)
    results.append(measure(f"vector add fp32, 2^{n.bit_length() - 1} elements", 12 * n, "GB/s", bandwidth, runs, rounds,
                           f"  (kdsl cold compile {compile_ms:.0f} ms)"))

    rows, cols = (1024 if quick else 4096), 1024
    m = rng.standard_normal((rows, cols), dtype=np.float32)
    res = np.full_like(m, np.nan)
    compile_ms = cold_compile_ms(softmax, res, m, cols, BLOCK=1024)
    runs = kdsl_runs(lambda **checked: softmax[(rows,)](res, m, cols, BLOCK=1024, **checked))
    e = np.exp(m - m.max(axis=1, keepdims=True))
    np.testing.assert_allclose(res, e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-7)

    def numpy_softmax() -> np.ndarray:
        z = np.exp(m - m.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    runs["numpy"] = numpy_softmax
    if torch is not None:
        tm = torch.from_numpy(m)
        runs["torch"] = lambda: torch.softmax(tm, dim=1)
    if "softmax" in peers:
        peers["softmax"](m, res)
        runs["numba"] = lambda: peers["softmax"](m, res)
    results.append(measure(f"row softmax fp32, {rows}x{cols}", 8 * rows * cols, "GB/s", bandwidth, runs, rounds,
                           f"  (kdsl cold compile {compile_ms:.0f} ms)"))

    w, b = rng.standard_normal(cols, dtype=np.float32), rng.standard_normal(cols, dtype=np.float32)
    compile_ms = cold_compile_ms(layer_norm, m, w, b, res, cols, 1e-5, BLOCK=1024)
    runs = kdsl_runs(lambda **checked: layer_norm[(rows,)](m, w, b, res, cols, 1e-5, BLOCK=1024, **checked))
    mean = m.mean(axis=1, keepdims=True)
    ref = (m - mean) / np.sqrt(((m - mean) ** 2).mean(axis=1, keepdims=True) + 1e-5) * w + b
    np.testing.assert_allclose(res, ref, rtol=1e-4, atol=1e-4)

    def numpy_layer_norm() -> np.ndarray:
        mu = m.mean(axis=1, keepdims=True)
        return (m - mu) / np.sqrt(m.var(axis=1, keepdims=True) + 1e-5) * w + b

    runs["numpy"] = numpy_layer_norm
    if torch is not None:
        tm, tw, tb = torch.from_numpy(m), torch.from_numpy(w), torch.from_numpy(b)
        runs["torch"] = lambda: torch.nn.functional.layer_norm(tm, (cols,), tw, tb, 1e-5)
    if "layer_norm" in peers:
        peers["layer_norm"](m, w, b, res, 1e-5)
        runs["numba"] = lambda: peers["layer_norm"](m, w, b, res, 1e-5)
    results.append(measure(f"layer norm forward fp32, {rows}x{cols}", 8 * rows * cols, "GB/s", bandwidth, runs, rounds,
                           f"  (kdsl cold compile {compile_ms:.0f} ms)"))

    a = rng.standard_normal((n_mm, n_mm), dtype=np.float32)
    bm = rng.standard_normal((n_mm, n_mm), dtype=np.float32)
    bias = rng.standard_normal(n_mm, dtype=np.float32)
    c = np.full_like(a, np.nan)
    exact = a.astype(np.float64) @ bm.astype(np.float64)
    for fused in (False, True):
        def launch(fused: bool = fused, **checked: bool) -> None:
            matmul[lambda meta: (n_mm // meta["BM"], n_mm // meta["BN"])](a, bm, c, bias, n_mm, n_mm, n_mm,
                                                                           BIAS_RELU=fused, **checked)
        start = time.perf_counter()
        runs = kdsl_runs(launch)
        tune_s = time.perf_counter() - start
        expected = np.maximum(exact + bias, 0) if fused else exact
        np.testing.assert_allclose(c, expected, rtol=1e-4, atol=1e-3 * np.sqrt(n_mm))
        if fused:
            runs["numpy"] = lambda: np.maximum(a @ bm + bias, 0, out=c)
            if torch is not None:
                ta, tb, tbias = torch.from_numpy(a), torch.from_numpy(bm), torch.from_numpy(bias)
                runs["torch"] = lambda: torch.addmm(tbias, ta, tb).relu_()
        else:
            runs["numpy"] = lambda: np.matmul(a, bm, out=c)
            if torch is not None:
                ta, tb = torch.from_numpy(a), torch.from_numpy(bm)
                runs["torch"] = lambda: torch.mm(ta, tb)
        name = f"{'matmul + bias + relu' if fused else 'matmul'} fp32, {n_mm}^3"
        results.append(measure(name, 2 * n_mm**3, "GFLOP/s", blas, runs, rounds,
                               f"  (kdsl tuned in {tune_s:.1f} s: {matmul.best_config})"))

    print("\ncompile latency")
    cold = median_cold_compile_ms(softmax, res, m, cols, BLOCK=1024)
    print(f"  kdsl cold compile of the softmax kernel: {cold:.0f} ms (median of 5)")
    import_ms, first_ms = fresh_process_ms()
    print(f"  fresh process, warm disk cache: import kdsl {import_ms:.0f} ms, then first softmax result "
          f"{first_ms:.0f} ms (medians of 5 processes)")
    if numba is not None:
        start = time.perf_counter()
        _numba_kernels()["softmax"](m, res)
        print(f"  numba cold @njit(parallel=True) softmax: {(time.perf_counter() - start) * 1e3:.0f} ms")

    saved = [p for p in (plot(r, plots) for r in results) if p is not None]
    if saved:
        print(f"\nplots: {', '.join(str(p) for p in saved)}")


if __name__ == "__main__":
    directory = Path(sys.argv[sys.argv.index("--plots") + 1]) if "--plots" in sys.argv else None
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else None
    main(quick="--quick" in sys.argv, rounds=rounds, **({"plots": directory} if directory else {}))
