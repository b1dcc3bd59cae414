"""Out-of-bounds accesses on `target="sim"` give the error the CPU's checked accesses give: the
simulator faults on the access (it lies outside every allocation: they are a red zone apart), names the PTX instruction's
source line (the `.loc` directives the GPU lowering writes), and the runtime turns the device
address back into the host array and element offset the kernel meant."""
import numpy as np
import pytest

import kdsl
from tests.cpu import test_checked_access as checked


def _fault(kernel, grid, *args, target, **meta):
    with pytest.raises(kdsl.MemoryAccessError) as info:
        kernel[grid](*args, target=target, **meta)
    return info.value


CASES = {
    "load past the end": (checked.copy, (2,), lambda: (np.arange(20, dtype=np.float32),
                                                        np.zeros(32, np.float32), 20), {"BLOCK": 16}),
    "store past the end": (checked.copy, (1,), lambda: (np.ones(32, np.float32), np.zeros(20, np.float32), 20),
                           {"BLOCK": 32}),
    "load before the start": (checked.shifted_load, (1,), lambda: (np.ones(16, np.float32),
                                                                   np.zeros(16, np.float32), -3), {"BLOCK": 16}),
    "load past the end into the next array's copy": (
        checked.shifted_load, (1,), lambda: (np.ones(50, np.float32), np.zeros(16, np.float32), 64), {"BLOCK": 16}),
    "gather": (checked.gather, (1,), lambda: (np.ones(8, np.float32), np.array([0, 1, 40, 2], np.int32),
                                              np.zeros(4, np.float32), 4), {"BLOCK": 4}),
    "scalar": (checked.scalar_access, (1,), lambda: (np.ones(4, np.float32), np.zeros(1, np.float32), 9), {}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_simulator_reports_what_the_cpu_reports(case):
    kernel, grid, make_args, meta = CASES[case]
    faults = {target: _fault(kernel, grid, *make_args(), target=target, **meta) for target in ("cpu", "sim")}
    fields = {t: (e.kernel, e.pid, e.file, e.line, e.argument, e.offset) for t, e in faults.items()}
    assert fields["sim"] == fields["cpu"]
    source = kernel.fn.__code__.co_filename
    assert fields["sim"][2] == source and "^" in str(faults["sim"])


def test_ptx_carries_the_kernel_lines():
    x, out = np.ones(16, np.float32), np.zeros(16, np.float32)
    ptx = checked.shifted_load.compile(x, out, 0, BLOCK=16, target="sim").asm["ptx"]
    assert f'.file\t1 "{checked.shifted_load.fn.__code__.co_filename}"' in ptx
    first = checked.shifted_load.fn.__code__.co_firstlineno
    assert any(line.split()[:3] == [".loc", "1", str(first + 3)] for line in ptx.splitlines())
