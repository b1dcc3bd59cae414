"""The on-disk cache: entries survive processes, damaged entries are rebuilt, never loaded."""
import os
import subprocess
import sys
import textwrap

import pytest

import platform

from kdsl import cache
from kdsl.backend.cpu import host, threads

LOADER_RUNS = sys.platform == "linux" and platform.machine() == "x86_64"

KERNEL_SCRIPT = textwrap.dedent('''
    import sys
    import numpy as np
    import kdsl
    import kdsl.language as kl
    import kdsl.backend.cpu.jit as jit

    compiled = []  # kernels compiled by LLVM (the thread pool's code is compiled once per machine)
    real = jit.compile_object
    jit.compile_object = lambda text: ("kdsl_pool_run" not in text and compiled.append(1)) or real(text)

    @kdsl.kernel
    def scale(x_ptr, out_ptr, n, factor, BLOCK: kl.constexpr):
        offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
        mask = offs < n
        kl.device_assert(factor > 0, "factor must be positive")
        kl.store(out_ptr + offs, kl.load(x_ptr + offs, mask=mask) * factor, mask=mask)

    x = np.random.default_rng(int(sys.argv[1])).standard_normal(1000).astype(np.float32)
    out = np.full_like(x, np.nan)
    scale[(4,)](x, out, x.size, 3.0, BLOCK=256)
    assert np.array_equal(out, x * np.float32(3.0)), "wrong result"
    try:
        scale[(4,)](x, out, x.size, -1.0, BLOCK=256)
    except kdsl.DeviceAssertionError as e:
        assert "kl.device_assert(factor > 0" in str(e), str(e)
    else:
        raise AssertionError("no assertion error")
    print("llvm compiles:", len(compiled))
''')


AUTOTUNE_SCRIPT = KERNEL_SCRIPT.split("@kdsl.kernel")[0] + textwrap.dedent('''
    @kdsl.autotune(configs=[kdsl.Config({"BLOCK": 64}), kdsl.Config({"BLOCK": 256})], key=["n"], warmup=1, rep=5,
                   restore_value=["x_ptr"])
    @kdsl.kernel
    def double(x_ptr, n, BLOCK: kl.constexpr):
        offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
        kl.store(x_ptr + offs, kl.load(x_ptr + offs, mask=offs < n) * 2, mask=offs < n)

    x = np.arange(1000, dtype=np.float32)
    double[lambda meta: (kdsl.cdiv(1000, meta["BLOCK"]),)](x, 1000)
    assert np.array_equal(x, np.arange(1000, dtype=np.float32) * 2)
    print("tuned:", len(double.timings), "llvm compiles:", len(compiled), "best:", double.best_config)
''')


SIM_SCRIPT = textwrap.dedent('''
    import numpy as np
    import kdsl
    import kdsl.language as kl
    import kdsl.backend.cuda.program as program

    compiled = []
    real = program.llvm_to_ptx
    program.llvm_to_ptx = lambda *args: compiled.append(1) or real(*args)

    @kdsl.kernel
    def scale(x_ptr, out_ptr, n, BLOCK: kl.constexpr):
        offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
        kl.store(out_ptr + offs, kl.load(x_ptr + offs, mask=offs < n) * 3, mask=offs < n)

    x = np.random.default_rng(0).standard_normal(300).astype(np.float32)
    out = np.full_like(x, np.nan)
    scale[(3,)](x, out, x.size, BLOCK=128, target="sim")
    assert np.array_equal(out, x * np.float32(3)), "wrong result"
    ptx = scale.compile(x, out, x.size, BLOCK=128, target="cuda", arch="sm_90").asm["ptx"]
    assert ".target sm_90" in ptx
    print("llvm compiles:", len(compiled))
''')


def run_kernel_script(tmp_path, cache_dir, seed=0, text=KERNEL_SCRIPT):
    script = tmp_path / "scale_kernel.py"
    script.write_text(text)
    env = {**os.environ, "KDSL_CACHE_DIR": str(cache_dir)}
    return subprocess.Popen([sys.executable, str(script), str(seed)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finished(process):
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return out.strip()


def entry_files(cache_dir):
    """The cache's kernel entries (not the host identity it remembers, `backend.cpu.host`, nor
    the thread pool's code, `backend.cpu.threads`)."""
    probe = host._probe()
    others = {cache.key("host identity", probe) if probe else None, threads.pool_cache_key()}
    return sorted(p for p in cache_dir.glob(f"*/*{cache.SUFFIX}") if p.stem not in others)


FRESH_SCRIPT = textwrap.dedent('''
    import sys
    import numpy as np
    import kdsl
    import kdsl.language as kl

    @kdsl.kernel
    def halve(x_ptr, n, BLOCK: kl.constexpr):
        offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
        kl.store(x_ptr + offs, kl.exp(kl.load(x_ptr + offs, mask=offs < n)) * 0.5, mask=offs < n)

    x = np.linspace(-2, 2, 300, dtype=np.float32)
    halve[(3,)](x, x.size, BLOCK=128)
    assert np.allclose(x, np.exp(np.linspace(-2, 2, 300, dtype=np.float32)) * 0.5), "wrong result"
    print("LLVM imported:", any(m in sys.modules for m in ("llvmlite.binding", "llvmlite.ir")))
''')


def test_a_fresh_process_with_a_warm_cache_runs_without_importing_llvm(tmp_path):
    """Its code is loaded by `elf_loader` and its host identity remembered by the cache: the
    process never imports llvmlite's binding, nor its IR builder (where the loader runs: x86-64
    Linux)."""
    cache_dir = tmp_path / "cache"
    assert finished(run_kernel_script(tmp_path, cache_dir, text=FRESH_SCRIPT)) == "LLVM imported: True"
    warm = finished(run_kernel_script(tmp_path, cache_dir, text=FRESH_SCRIPT))
    assert warm == f"LLVM imported: {not LOADER_RUNS}"


def test_second_process_loads_compiled_code_without_llvm(tmp_path):
    cache_dir = tmp_path / "cache"
    assert finished(run_kernel_script(tmp_path, cache_dir)) == "llvm compiles: 1"
    assert len(entry_files(cache_dir)) == 1
    assert finished(run_kernel_script(tmp_path, cache_dir, seed=1)) == "llvm compiles: 0"


def test_second_process_reuses_tuning_results_and_code(tmp_path):
    cache_dir = tmp_path / "cache"
    first = finished(run_kernel_script(tmp_path, cache_dir, text=AUTOTUNE_SCRIPT))
    assert first.startswith("tuned: 1 llvm compiles: 2 best: BLOCK: ")
    second = finished(run_kernel_script(tmp_path, cache_dir, text=AUTOTUNE_SCRIPT))
    assert second == "tuned: 0 llvm compiles: 0 best: " + first.split("best: ")[1]


def test_second_process_loads_ptx_without_llvm(tmp_path):
    cache_dir = tmp_path / "cache"
    assert finished(run_kernel_script(tmp_path, cache_dir, text=SIM_SCRIPT)) == "llvm compiles: 2"
    assert len(entry_files(cache_dir)) == 2  # sim at sm_80, cuda at sm_90
    assert finished(run_kernel_script(tmp_path, cache_dir, text=SIM_SCRIPT)) == "llvm compiles: 0"


def test_processes_compiling_at_once_both_succeed(tmp_path):
    cache_dir = tmp_path / "cache"
    processes = [run_kernel_script(tmp_path, cache_dir, seed) for seed in range(3)]
    outputs = [finished(p) for p in processes]
    assert set(outputs) <= {"llvm compiles: 0", "llvm compiles: 1"} and "llvm compiles: 1" in outputs
    assert len(entry_files(cache_dir)) == 1
    assert finished(run_kernel_script(tmp_path, cache_dir)) == "llvm compiles: 0"


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "garbage"])
def test_damaged_entry_is_rebuilt(tmp_path, damage):
    cache_dir = tmp_path / "cache"
    finished(run_kernel_script(tmp_path, cache_dir))
    (entry,) = entry_files(cache_dir)
    data = entry.read_bytes()
    damaged = {"truncate": data[: len(data) // 2],
               "flip": data[:-100] + bytes([data[-100] ^ 1]) + data[-99:],
               "empty": b"",
               "garbage": os.urandom(len(data))}[damage]
    entry.write_bytes(damaged)
    assert finished(run_kernel_script(tmp_path, cache_dir)) == "llvm compiles: 1"
    assert entry.read_bytes() == data
    assert finished(run_kernel_script(tmp_path, cache_dir)) == "llvm compiles: 0"


def test_round_trip_report_and_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("KDSL_CACHE_DIR", str(tmp_path))
    keys = [cache.key("kernel", str(i)) for i in range(3)]
    assert len(set(keys)) == 3
    for i, k in enumerate(keys):
        cache.store(k, {"object": bytes([i]) * 100, "name": f"k{i}"})
    assert cache.load(keys[1]) == {"object": bytes([1]) * 100, "name": "k1"}
    report = cache.report()
    assert (report.directory, report.entries) == (tmp_path, 3) and report.bytes > 300
    assert "3 entries" in str(report)
    assert cache.clear() == 3
    assert cache.report().entries == 0 and cache.load(keys[0]) is None


def test_entry_naming_a_foreign_class_is_not_unpickled(tmp_path, monkeypatch):
    monkeypatch.setenv("KDSL_CACHE_DIR", str(tmp_path))

    class Exploit:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    k = cache.key("exploit")
    cache.store(k, Exploit())
    assert cache.load(k) is None
    assert not (tmp_path / "pwned").exists()
    assert not any(tmp_path.glob(f"*/*{cache.SUFFIX}"))


def test_cache_off(tmp_path, monkeypatch):
    monkeypatch.setenv("KDSL_CACHE_DIR", "off")
    k = cache.key("anything")
    cache.store(k, 1)
    assert cache.load(k) is None
    assert cache.report().directory is None and "off" in str(cache.report())


def test_unwritable_directory_is_skipped(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("KDSL_CACHE_DIR", str(blocker))
    k = cache.key("x")
    cache.store(k, 1)
    assert cache.load(k) is None


def test_default_directory_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("KDSL_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache.directory() == tmp_path / "kdsl"


def test_pickled_payload_round_trips_kdsl_types(tmp_path, monkeypatch):
    from kdsl.ir.types import parse_type

    monkeypatch.setenv("KDSL_CACHE_DIR", str(tmp_path))
    value = [parse_type("*f32"), parse_type("i64")]
    cache.store(cache.key("types"), value)
    assert cache.load(cache.key("types")) == value


def test_the_source_digest_changes_with_any_python_file_and_only_then(tmp_path):
    """kdsl's code enters every key (`code_version`) by its files' paths, sizes and times."""
    (tmp_path / "sub").mkdir()
    module, other = tmp_path / "a.py", tmp_path / "sub" / "b.py"
    module.write_text("x = 1\n")
    other.write_text("y = 2\n")
    (tmp_path / "notes.txt").write_text("not code")
    first = cache.source_digest(str(tmp_path))
    assert cache.source_digest(str(tmp_path)) == first
    (tmp_path / "notes.txt").write_text("still not code")
    assert cache.source_digest(str(tmp_path)) == first
    digests = {first}
    other.write_text("y = 20\n")  # a new size
    digests.add(cache.source_digest(str(tmp_path)))
    stat = module.stat()
    os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # a new time, the same size
    digests.add(cache.source_digest(str(tmp_path)))
    (tmp_path / "sub" / "c.py").write_text("")
    digests.add(cache.source_digest(str(tmp_path)))
    assert len(digests) == 4
