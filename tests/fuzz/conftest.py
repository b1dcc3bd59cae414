"""The fuzz tests' sim kernels are assembled by ptxas for sm_80 and sm_90 after each test (where
ptxas is installed), as the language conformance suite's are: PTX that the simulator runs but ptxas
rejects fails the test that compiled it."""
from tests.language.conftest import _gpu_kernels_assemble, _recording_gpu_kernels  # noqa: F401
