"""The language conformance suite runs every test that takes `target` on every target listed here.

`KDSL_TEST_TARGETS` (comma-separated) overrides the list: `KDSL_TEST_TARGETS=cpu` runs the suite on
the CPU only, `KDSL_TEST_TARGETS=sim` on the PTX simulator only.

On the GPU targets every kernel a test compiles is also assembled by ptxas for sm_80 and sm_90
(where ptxas is installed), after the test, so PTX that runs on the simulator but that ptxas rejects
fails the test that compiled it. ptxas takes most of its time starting up, so a test's kernels go to
one ptxas run per architecture, each entry renamed apart; only where that run fails (or runs past
`BATCH_SECONDS`) is each kernel assembled alone, to name the ones ptxas rejects. A kernel with
module-scope definitions of its own (libm's constant tables, device functions) is always assembled
alone: two files defining one symbol can send ptxas into a loop."""
import os
import re
import subprocess
import tempfile

import pytest

from kdsl.backend.cuda import program, ptxas
from kdsl.backend.cuda.ptx import llvm_to_ptx

TARGETS = os.environ.get("KDSL_TEST_TARGETS", "cpu,interpret,sim").split(",")
ASSEMBLED_FOR = ("sm_80", "sm_90")
BATCH_SECONDS = 60
MODULE_DEFINITION = re.compile(r"^(?:\.visible |\.weak )?\.(?:global|const|shared|func)\b", re.M)

_compiled: list[tuple[str, dict[str, str]]] = []  # (entry, PTX per architecture) since the test began


def pytest_generate_tests(metafunc):
    if "target" in metafunc.fixturenames:
        metafunc.parametrize("target", TARGETS)


def _recording(compile_gpu):
    def compile_and_record(kernel, name, target, arch, **options):
        built = compile_gpu(kernel, name, target, arch, **options)
        ptx = {a: built[1]["ptx"] if a == arch else llvm_to_ptx(kernel.llvm_ir, a)[1] for a in ASSEMBLED_FOR}
        _compiled.append((built[0].entry, ptx))
        return built
    compile_and_record.recording = True
    return compile_and_record


def _assembles_together(kernels: list[tuple[str, str]], arch: str) -> bool:
    """Whether one ptxas run for `arch` accepts all of `kernels` ((entry, PTX)), each entry renamed
    apart so that specialisations of one kernel do not clash."""
    with tempfile.TemporaryDirectory(prefix="kdsl-ptxas-") as tmp:
        files = []
        for i, (entry, ptx) in enumerate(kernels):
            renamed = f"{entry}__{i}"
            files.append(os.path.join(tmp, f"{i}.ptx"))
            with open(files[-1], "w") as f:
                f.write(ptx.replace(f".entry {entry}(", f".entry {renamed}(").replace(f"{entry}_param_", f"{renamed}_param_"))
        try:
            done = subprocess.run(["ptxas", f"-arch={arch}", *files, "-o", os.path.join(tmp, "all.cubin")],
                                  capture_output=True, text=True, timeout=BATCH_SECONDS)
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0


@pytest.fixture(autouse=True, scope="session")
def _recording_gpu_kernels():
    if not ptxas.available() or getattr(program.compile_gpu, "recording", False):  # tests/fuzz shares it
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(program, "compile_gpu", _recording(program.compile_gpu))
        yield


@pytest.fixture(autouse=True)
def _gpu_kernels_assemble(_recording_gpu_kernels):
    yield
    kernels, _compiled[:] = list(_compiled), []
    for arch in ASSEMBLED_FOR:
        alone = [ptx[arch] for _, ptx in kernels if MODULE_DEFINITION.search(ptx[arch])]
        batch = [(entry, ptx[arch]) for entry, ptx in kernels if not MODULE_DEFINITION.search(ptx[arch])]
        if batch and not _assembles_together(batch, arch):
            alone += [ptx for _, ptx in batch]
        for ptx in alone:
            ptxas.assemble(ptx, arch)
