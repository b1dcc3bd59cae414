"""The language conformance suite runs every test that takes `target` on every target listed here.

`KDSL_TEST_TARGETS` (comma-separated) overrides the list: `KDSL_TEST_TARGETS=sim` runs the suite on
the PTX simulator only.

On the GPU targets every kernel the suite compiles is also assembled by ptxas for sm_80 and sm_90
(where ptxas is installed), so PTX that runs on the simulator but that ptxas rejects
fails the test that compiled it."""
import os

import pytest

from kdsl.backend.cuda import program, ptxas
from kdsl.backend.cuda.ptx import llvm_to_ptx

TARGETS = os.environ.get("KDSL_TEST_TARGETS", "cpu,interpret").split(",")
ASSEMBLED_FOR = ("sm_80", "sm_90")


def pytest_generate_tests(metafunc):
    if "target" in metafunc.fixturenames:
        metafunc.parametrize("target", TARGETS)


def _assembling(compile_gpu):
    def compile_and_assemble(kernel, name, target, arch, cubin=False):
        built = compile_gpu(kernel, name, target, arch, cubin=cubin)
        for other in ASSEMBLED_FOR:
            ptxas.assemble(built[1]["ptx"] if other == arch else llvm_to_ptx(kernel.llvm_ir, other)[1], other)
        return built
    return compile_and_assemble


@pytest.fixture(autouse=True, scope="session")
def _gpu_kernels_assemble():
    if not ptxas.available():
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(program, "compile_gpu", _assembling(program.compile_gpu))
        yield
