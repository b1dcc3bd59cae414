"""`elf_loader`: LLVM's objects for this host loaded without LLVM (every CPU kernel of the suite
runs through it); what it does not handle is refused, and `program.load_code` then links with LLVM."""
import ctypes
import platform
import sys

import pytest
from llvmlite import ir

from kdsl.backend.cpu import elf_loader, program
from kdsl.backend.cpu.jit import Jitted, compile_object

pytestmark = pytest.mark.skipif(sys.platform != "linux" or platform.machine() != "x86_64",
                                reason="the loader handles x86-64 Linux objects only")
F64 = ir.DoubleType()


def _object(build) -> bytes:
    module = ir.Module("m")
    build(module)
    return compile_object(str(module))[1]


def _function(module: ir.Module, name: str, body) -> None:
    fn = ir.Function(module, ir.FunctionType(F64, [F64]), name)
    b = ir.IRBuilder(fn.append_basic_block())
    b.ret(body(b, module, fn.args[0]))


def _call(code, name: str, x: float) -> float:
    return ctypes.CFUNCTYPE(ctypes.c_double, ctypes.c_double)(code.address(name))(x)


def test_calls_into_libm_constants_and_python_callbacks_are_linked():
    """A call of libm's `cos`, a constant-pool load and a call of a ctypes callback given as an
    external: every relocation lands."""
    callback = ctypes.CFUNCTYPE(ctypes.c_double, ctypes.c_double)(lambda v: v * 3.0)

    def body(b, module, x):
        cos = ir.Function(module, ir.FunctionType(F64, [F64]), "cos")
        triple = ir.Function(module, ir.FunctionType(F64, [F64]), "python_triple")
        return b.fadd(b.call(triple, [b.call(cos, [x])]), ir.Constant(F64, 0.125))
    code = elf_loader.load(_object(lambda m: _function(m, "f", body)), {
        "python_triple": ctypes.cast(callback, ctypes.c_void_p).value})
    assert _call(code, "f", 0.5) == pytest.approx(3 * 0.8775825618903728 + 0.125, rel=1e-15)


def test_writable_data_undefined_symbols_and_other_files_are_refused():
    def counter(module):
        total = ir.GlobalVariable(module, F64, "total")
        total.initializer = ir.Constant(F64, 0.0)
        _function(module, "f", lambda b, m, x: b.fadd(b.load(total), x))
    with pytest.raises(elf_loader.Unsupported, match="writable section"):
        elf_loader.load(_object(counter), {})
    missing = _object(lambda m: _function(
        m, "f", lambda b, mod, x: b.call(ir.Function(mod, ir.FunctionType(F64, [F64]), "no_such_fn_kdsl"), [x])))
    with pytest.raises(elf_loader.Unsupported, match="no_such_fn_kdsl"):
        elf_loader.load(missing, {})
    with pytest.raises(elf_loader.Unsupported, match="not an x86-64 ELF"):
        elf_loader.load(b"\x7fELF" + bytes(60), {})


def test_what_the_loader_refuses_llvm_links():
    def counter(module):
        total = ir.GlobalVariable(module, F64, "total")
        total.initializer = ir.Constant(F64, 2.5)
        _function(module, "f", lambda b, m, x: b.fadd(b.load(total), x))
    code = program.load_code(_object(counter))
    assert isinstance(code, Jitted) and _call(code, "f", 1.0) == 3.5
