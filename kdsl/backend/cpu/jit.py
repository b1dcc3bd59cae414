"""The host target machine, the O3 pipeline and the MCJIT engine that makes the object file
(which `elf_loader` loads; `load_object` links it with LLVM where that loader cannot).

Compile latency: the code generator runs at its default level rather than its
aggressive one. (Turning LLVM's unroller off for the element loops cut a cold
softmax compile from about 110 to 73 ms here, but the softmax then ran 1.6x
slower; speed level 2, or the code generator's level 1, changed neither.)
"""
from __future__ import annotations

import ctypes.util
from dataclasses import dataclass
from functools import lru_cache

import llvmlite.binding as llvm

from kdsl.backend.cpu.debug_runtime import register_symbols


@lru_cache(maxsize=None)
def _initialize() -> None:
    """Native target, libgcc_s for the conversion helpers LLVM calls (`__truncdfhf2`), and
    the callbacks into Python (`debug_runtime`)."""
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    runtime = ctypes.util.find_library("gcc_s")
    if runtime is not None:
        llvm.load_library_permanently(runtime)
    register_symbols()


@lru_cache(maxsize=None)
def host_features() -> str:
    """The host CPU's features as LLVM names them ("+avx2,+fma,..."), asked once."""
    _initialize()
    return llvm.get_host_cpu_features().flatten()


def target_machine() -> llvm.TargetMachine:
    """A new host target machine: an MCJIT engine takes ownership of the one it is given. LLVM
    may pick 512-bit vectors where the host has them (`-prefer-256-bit`)."""
    _initialize()
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(cpu=llvm.get_host_cpu_name(), features=host_features() + ",-prefer-256-bit",
                                        opt=2)


def vector_bits() -> int:
    """The widest vectors the host computes on: 512 bits with AVX-512, else 256."""
    return 512 if "+avx512f" in host_features().split(",") else 256


def host_triple() -> str:
    return llvm.get_process_triple()


@lru_cache(maxsize=None)
def host_identity() -> str:
    """What the code generated for this host depends on: triple, CPU, its features, LLVM's version."""
    version = ".".join(map(str, llvm.llvm_version_info))
    return f"{host_triple()} {llvm.get_host_cpu_name()} {host_features()} llvm {version}"


@dataclass
class Jitted:
    """Machine code loaded into an execution engine, which owns it."""

    engine: llvm.ExecutionEngine

    def address(self, name: str) -> int:
        return self.engine.get_function_address(name)


def compile_object(llvm_ir: str) -> tuple[str, bytes]:
    """Parse, verify, optimise at O3 and compile `llvm_ir` for the host: the optimised IR and the
    object file (which `elf_loader`, or `load_object`, loads)."""
    tm = target_machine()
    mod = llvm.parse_assembly(llvm_ir)
    mod.verify()
    mod.triple = tm.triple
    mod.data_layout = str(tm.target_data)
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(mod, pb)
    optimized = str(mod)
    engine = llvm.create_mcjit_compiler(mod, tm)
    objects: list[bytes] = []
    engine.set_object_cache(notify_func=lambda _module, data: objects.append(data))
    engine.finalize_object()
    return optimized, objects[0]


def load_object(data: bytes) -> Jitted:
    """Link an object file from `compile_object` into a fresh engine."""
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), target_machine())
    engine.add_object_file(llvm.ObjectFileRef.from_data(data))
    engine.finalize_object()
    return Jitted(engine)
