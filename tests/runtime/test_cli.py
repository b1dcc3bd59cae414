"""`python -m kdsl`: ahead-of-time compilation from a signature, and the cache command."""
import subprocess
import sys
import textwrap

import pytest

from kdsl.__main__ import main
from kdsl.backend.cuda import ptxas

KERNELS = textwrap.dedent('''
    import kdsl
    import kdsl.language as kl

    @kdsl.kernel
    def add(x_ptr, y_ptr, out_ptr, n, BLOCK: kl.constexpr):
        offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
        mask = offs < n
        kl.store(out_ptr + offs, kl.load(x_ptr + offs, mask=mask) + kl.load(y_ptr + offs, mask=mask), mask=mask)

    @kdsl.autotune(configs=[kdsl.Config({"BLOCK": 128})], key=["n"])
    @kdsl.kernel
    def scaled(x_ptr, n, scale, BLOCK: kl.constexpr):
        offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
        kl.store(x_ptr + offs, kl.load(x_ptr + offs, mask=offs < n) * scale, mask=offs < n)

    not_a_kernel = 3
''')


@pytest.fixture
def kernels_file(tmp_path):
    path = tmp_path / "aot_kernels.py"
    path.write_text(KERNELS)
    return path


def compile_args(path, kernel="add", signature="*fp32:16,*fp32:16,*fp32:16,i32", *rest):
    return ["compile", f"{path}:{kernel}", "--signature", signature, "--constexpr", "BLOCK=1024", *rest]


needs_ptxas = pytest.mark.skipif(not ptxas.available(), reason="ptxas (CUDA toolkit) not on the PATH")


@needs_ptxas
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_emits_ptx_that_ptxas_assembles(kernels_file, tmp_path, arch):
    out = tmp_path / f"add_{arch}.ptx"
    assert main(compile_args(kernels_file, "add", "*fp32:16,*fp32:16,*fp32:16,i32",
                             "--target", "cuda", "--arch", arch, "-o", str(out))) == 0
    text = out.read_text()
    assert f".target {arch}" in text and ".entry add(" in text
    ptxas.assemble(text, arch)


@needs_ptxas
def test_emits_a_cubin_by_suffix(kernels_file, tmp_path):
    out = tmp_path / "add.cubin"
    assert main(compile_args(kernels_file, "add", "*fp16,*fp16,*fp16,i64", "-o", str(out))) == 0
    assert out.read_bytes()[:4] == b"\x7fELF"


def test_emits_ir_and_llvm_for_the_cpu(kernels_file, capsys):
    assert main(compile_args(kernels_file, "add", "*bf16,*bf16,*bf16,i32", "--target", "cpu", "--emit", "ir")) == 0
    ir = capsys.readouterr().out
    assert "kernel @add(%x_ptr: *bf16, %y_ptr: *bf16, %out_ptr: *bf16, %n: i32)" in ir
    assert "arange {end = 1024, start = 0}" in ir
    assert main(compile_args(kernels_file, "add", "*fp32,*fp32,*fp32,i32", "--target", "cpu")) == 0
    assert "define" in capsys.readouterr().out


def test_kernel_behind_autotune_compiles_with_its_constexprs(kernels_file, capsys):
    argv = ["compile", f"{kernels_file}:scaled", "-s", "*fp64,i32,fp64", "-c", "BLOCK=256", "--emit", "ir"]
    assert main(argv) == 0
    assert "kernel @scaled(%x_ptr: *f64, %n: i32, %scale: f64)" in capsys.readouterr().out


@pytest.mark.parametrize("argv_tail, message", [
    (["add", "*fp32,*fp32,i32"], "the signature has 3 types for the runtime parameters (x_ptr, y_ptr, out_ptr, n)"),
    (["add", "*fp33,*fp32,*fp32,i32"], "cannot read the signature's type '*fp33' for 'x_ptr'"),
    (["add", "*fp32:8,*fp32,*fp32,i32"], "cannot read the signature's type '*fp32:8'"),
    (["not_a_kernel", "i32"], "'not_a_kernel' in"),
    (["missing", "i32"], "'missing' in"),
])
def test_bad_requests_are_reported(kernels_file, capsys, argv_tail, message):
    kernel, signature = argv_tail
    assert main(compile_args(kernels_file, kernel, signature)) == 1
    assert message in capsys.readouterr().err


def test_bad_constexpr_and_kernel_names(kernels_file, capsys):
    argv = ["compile", f"{kernels_file}:add", "-s", "*fp32,*fp32,*fp32,i32", "-c", "BLOCK=1000", "--emit", "ir"]
    assert main(argv) == 1
    assert "must be a positive power of two" in capsys.readouterr().err
    assert main(["compile", f"{kernels_file}:add", "-s", "i32", "-c", "BLOCK=x y"]) == 1
    assert "must be a Python literal" in capsys.readouterr().err
    assert main(["compile", "no_colon", "-s", "i32"]) == 1
    assert "MODULE:KERNEL" in capsys.readouterr().err
    assert main(["compile", f"{kernels_file}:add", "-s", "*fp32,*fp32,*fp32,i32", "-c", "BLOCK=64",
                 "--target", "cpu", "--emit", "ptx"]) == 1
    assert "--emit ptx needs --target cuda" in capsys.readouterr().err


def test_cache_command_reports_and_clears(tmp_path, monkeypatch, capsys, kernels_file):
    monkeypatch.setenv("KDSL_CACHE_DIR", str(tmp_path / "cache"))
    assert main(compile_args(kernels_file, "add", "*fp32,*fp32,*fp32,i32", "--target", "cpu")) == 0
    capsys.readouterr()
    assert main(["cache"]) == 0
    assert "1 entries" in capsys.readouterr().out
    assert main(["cache", "--clear"]) == 0
    assert capsys.readouterr().out.startswith("removed 1 entries")


def test_help_documents_compile():
    out = subprocess.run([sys.executable, "-m", "kdsl", "compile", "--help"], capture_output=True, text=True,
                         check=True).stdout
    for flag in ("--signature", "--constexpr", "--target", "--arch", "--emit", "--output"):
        assert flag in out
