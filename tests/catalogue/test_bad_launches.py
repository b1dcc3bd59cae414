"""The catalogue of bad launches: wrong arguments, grids, targets, options and decorations. Each
must raise its own kdsl error (`LaunchError` for a launch, before anything runs) with a message
that says what is wrong; none may crash or hang the process, and none may write the output."""
import importlib.util
import re

import numpy as np
import pytest

import kdsl
import kdsl.language as kl
from tests.cuda.lowered import has_gpu
from tests.helpers import poisoned

N = 16


@kdsl.kernel
def fill(out_ptr, value, n, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    kl.store(out_ptr + offs, value, mask=offs < n)  # the store a read-only output is refused at


@kdsl.kernel
def copy(x_ptr, out_ptr, n, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    kl.store(out_ptr + offs, kl.load(x_ptr + offs, mask=offs < n), mask=offs < n)


class DeviceArray:
    """An array on a CUDA device as far as `__cuda_array_interface__` says (never dereferenced)."""

    def __init__(self, n):
        self.__cuda_array_interface__ = {"shape": (n,), "typestr": "<f4", "data": (0x7000_0000, False),
                                         "version": 3}


class GpuDLPack:
    """A DLPack producer on a CUDA device (kDLCUDA = 2)."""

    def __dlpack__(self, stream=None):
        raise AssertionError("a GPU DLPack array must be refused before it is exported")

    def __dlpack_device__(self):
        return (2, 0)


def read_only(out):
    view = out.view()
    view.flags.writeable = False
    return view


def _from_exec():
    namespace = {}
    exec("def made_by_exec(x_ptr):\n    pass\n", namespace)
    return namespace["made_by_exec"]


autotuned = kdsl.autotune(configs=[kdsl.Config({"BLOCK": N})], key=["n"])(fill)
misconfigured = kdsl.autotune(configs=[kdsl.Config({"BLOK": N})], key=["n"])(fill)
bad_heuristic = kdsl.heuristics({"BLOCK": lambda args: args["BLOCK_SIZE"]})(fill)


def case(name, launch, error, reason):
    """A row: `launch(out)` with `out` a poisoned float32 output, the exact error class and the words
    of its message."""
    return pytest.param(launch, error, reason, id=name)


STORE_LINE = "kl.store(out_ptr + offs, value, mask=offs < n)"

CASES = [
    # arguments
    case("too_few_arguments", lambda out: fill[(1,)](out, 1.0, BLOCK=N),
         kdsl.LaunchError, r"'fill' is missing the argument 'n'"),
    case("too_many_arguments", lambda out: fill[(1,)](out, 1.0, N, N, 3),
         kdsl.LaunchError, r"'fill' takes 4 arguments \(out_ptr, value, n, BLOCK\), got 5"),
    case("unknown_keyword", lambda out: fill[(1,)](out, 1.0, N, BLOCK=N, bogus=1),
         kdsl.LaunchError, r"'fill' has no parameter 'bogus' \(parameters: out_ptr, value, n, BLOCK\)"),
    case("argument_given_twice", lambda out: fill[(1,)](out, 1.0, N, BLOCK=N, out_ptr=out),
         kdsl.LaunchError, r"'fill' got two values for 'out_ptr'"),
    case("missing_constexpr", lambda out: fill[(1,)](out, 1.0, N),
         kdsl.LaunchError, r"'fill' is missing the compile-time constant 'BLOCK'"),
    case("constexpr_is_an_array", lambda out: fill[(1,)](out, 1.0, N, BLOCK=np.array([N])),
         kdsl.LaunchError, r"the compile-time constant 'BLOCK' must be a number, bool, string, tuple, dtype or "
                           r"None, got ndarray"),
    case("complex_array", lambda out: fill[(1,)](out.astype(np.complex64), 1.0, N, BLOCK=N),
         kdsl.LaunchError, r"'fill': argument 'out_ptr': arrays of complex64 are not supported"),
    case("object_array", lambda out: fill[(1,)](out.astype(object), 1.0, N, BLOCK=N),
         kdsl.LaunchError, r"'fill': argument 'out_ptr': arrays of object are not supported"),
    case("complex_numpy_scalar", lambda out: fill[(1,)](out, np.complex64(1), N, BLOCK=N),
         kdsl.LaunchError, r"'fill': argument 'value': .*complex64 are not supported"),
    case("python_list", lambda out: fill[(1,)](out.tolist(), 1.0, N, BLOCK=N),
         kdsl.LaunchError, r"argument 'out_ptr' has unsupported type list; pass an array"),
    case("string_for_a_number", lambda out: fill[(1,)](out, "1.0", N, BLOCK=N),
         kdsl.LaunchError, r"argument 'value' has unsupported type str"),
    case("int_beyond_64_bits", lambda out: fill[(1,)](out, 1.0, 2**64, BLOCK=N),
         kdsl.LaunchError, r"argument 'n' = 18446744073709551616 does not fit in int64 or uint64"),
    # grids
    case("grid_string", lambda out: fill["4"](out, 1.0, N, BLOCK=N),
         kdsl.LaunchError, r"the grid must be an int or a tuple of 1 to 3 ints, got '4'"),
    case("grid_float", lambda out: fill[(1.5,)](out, 1.0, N, BLOCK=N),
         kdsl.LaunchError, r"grid dimensions must be ints, got \(1\.5,\)"),
    case("grid_of_four", lambda out: fill[(1, 1, 1, 1)](out, 1.0, N, BLOCK=N),
         kdsl.LaunchError, r"the grid must be an int or a tuple of 1 to 3 ints, got \(1, 1, 1, 1\)"),
    case("grid_bool", lambda out: fill[True](out, 1.0, N, BLOCK=N),
         kdsl.LaunchError, r"the grid must be an int or a tuple of 1 to 3 ints, got True"),
    case("grid_empty_tuple", lambda out: fill[()](out, 1.0, N, BLOCK=N),
         kdsl.LaunchError, r"the grid must be an int or a tuple of 1 to 3 ints, got \(\)"),
    case("grid_negative", lambda out: fill[(2, -1)](out, 1.0, N, BLOCK=N),
         kdsl.LaunchError, r"grid dimensions must not be negative, got \(2, -1\)"),
    case("grid_too_large", lambda out: fill[(2**31,)](out, 1.0, N, BLOCK=N),
         kdsl.LaunchError, r"grid dimension 2147483648 is too large \(at most 2\*\*31 - 1\)"),
    case("grid_function_raises", lambda out: fill[lambda meta: meta["n"] // 0](out, 1.0, N, BLOCK=N),
         kdsl.LaunchError, r"the grid function raised ZeroDivisionError"),
    case("grid_function_returns_garbage", lambda out: fill[lambda meta: None](out, 1.0, N, BLOCK=N),
         kdsl.LaunchError, r"the grid must be an int or a tuple of 1 to 3 ints, got None"),
    case("grid_function_takes_nothing", lambda out: fill[lambda: (1,)](out, 1.0, N, BLOCK=N),
         kdsl.LaunchError, r"the grid function raised TypeError: .*takes 0 positional arguments but 1 was given"),
    # targets and options
    case("unknown_target", lambda out: fill[(1,)](out, 1.0, N, BLOCK=N, target="tpu"),
         kdsl.LaunchError, r"unknown target 'tpu'; choose cpu, cuda, sim or interpret"),
    case("num_warps_zero", lambda out: fill[(1,)](out, 1.0, N, BLOCK=N, num_warps=0),
         kdsl.LaunchError, r"'fill': num_warps must be a positive int, got 0"),
    case("num_stages_not_an_int", lambda out: fill[(1,)](out, 1.0, N, BLOCK=N, num_stages="3"),
         kdsl.LaunchError, r"'fill': num_stages must be a positive int, got '3'"),
    case("compile_for_interpret", lambda out: fill.compile(out, 1.0, N, BLOCK=N, target="interpret"),
         kdsl.LaunchError, r"target 'interpret' runs the Python function and compiles nothing"),
    # memory
    case("read_only_output", lambda out: fill[(1,)](read_only(out), 1.0, N, BLOCK=N),
         kdsl.LaunchError, r"argument 'out_ptr' is a read-only array, but the kernel stores through it at "
                           + re.escape(__file__) + r":\d+:\n +" + re.escape(STORE_LINE) + r".*\n +\^+"),
    case("mixed_devices", lambda out: copy[(1,)](DeviceArray(N), out, N, BLOCK=N),
         kdsl.LaunchError, r"'copy': arrays on different devices \(cpu, cuda\)"),
    case("cpu_target_device_arrays", lambda out: copy[(1,)](DeviceArray(N), DeviceArray(N), N, BLOCK=N,
                                                            target="cpu"),
         kdsl.LaunchError, r"'copy': target 'cpu' cannot use arrays on a CUDA device"),
    case("sim_target_device_arrays", lambda out: copy[(1,)](DeviceArray(N), DeviceArray(N), N, BLOCK=N,
                                                            target="sim"),
         kdsl.LaunchError, r"'copy': target 'sim' runs on host arrays .*CUDA device"),
    case("interpret_device_arrays", lambda out: copy[(1,)](DeviceArray(N), DeviceArray(N), N, BLOCK=N,
                                                           target="interpret"),
         kdsl.LaunchError, r"argument 'x_ptr': the interpret target reads host memory only; this array lives on "
                           r"'cuda'"),
    case("dlpack_on_a_gpu", lambda out: fill[(1,)](GpuDLPack(), 1.0, N, BLOCK=N),
         kdsl.LaunchError, r"argument 'out_ptr': DLPack arrays are supported on the CPU only"),
    # decoration, calling, tuning
    case("kernel_called_directly", lambda out: fill(out, 1.0, N, BLOCK=N),
         kdsl.KdslError, r"launch a kernel with fill\[grid\]\(\.\.\.\); calling it directly only works inside "
                         r"another kernel"),
    case("kernel_decorates_a_number", lambda out: kdsl.kernel(3),
         kdsl.KdslError, r"@kdsl\.kernel decorates a function, not int"),
    case("kernel_without_a_source_file", lambda out: kdsl.kernel(_from_exec())[(1,)](out),
         kdsl.CompilationError, r"cannot read the source of 'made_by_exec' .*; kernels must be defined in a file"),
    case("autotune_unknown_key", lambda out: kdsl.autotune(configs=[kdsl.Config({"BLOCK": N})], key=["size"])(fill),
         kdsl.KdslError, r"autotune names \['size'\], which are not parameters of 'fill'"),
    case("autotune_config_unknown_parameter", lambda out: misconfigured[(1,)](out, 1.0, N),
         kdsl.LaunchError, r"'fill' has no parameter 'BLOK'"),
    case("autotuned_constexpr_passed", lambda out: autotuned[(1,)](out, 1.0, N, BLOCK=N),
         kdsl.LaunchError, r"\['BLOCK'\] are set by the autotune configs; do not pass them at launch"),
    case("heuristic_raises", lambda out: bad_heuristic[(1,)](out, 1.0, N),
         kdsl.LaunchError, r"the heuristic for 'BLOCK' raised KeyError: 'BLOCK_SIZE'"),
    case("unknown_gpu_arch", lambda out: fill.compile(out, 1.0, N, BLOCK=N, target="sim", arch="sm_10"),
         kdsl.LaunchError, r"unknown GPU architecture 'sm_10'; kdsl compiles for sm_80"),
    case("checked_not_a_bool", lambda out: fill[(1,)](out, 1.0, N, BLOCK=N, checked="yes"),
         kdsl.LaunchError, r"checked must be True or False, got 'yes'"),
]

if importlib.util.find_spec("torch") is not None:
    import torch

    CASES.append(case("torch_complex_tensor", lambda out: fill[(1,)](torch.zeros(N, dtype=torch.complex64), 1.0, N,
                                                                     BLOCK=N),
                      kdsl.LaunchError, r"torch tensors of torch\.complex64 are not supported"))
    CASES.append(case("torch_meta_tensor", lambda out: fill[(1,)](torch.empty(N, device="meta"), 1.0, N, BLOCK=N),
                      kdsl.LaunchError, r"torch tensors on the 'meta' device are not supported"))
    CASES.append(case("torch_sparse_tensor", lambda out: fill[(1,)](torch.eye(N).to_sparse(), 1.0, N, BLOCK=N),
                      kdsl.LaunchError, r"torch tensors of layout torch\.sparse_coo are not supported"))

if not has_gpu():
    CASES.append(case("cuda_target_without_gpu", lambda out: fill[(1,)](out, 1.0, N, BLOCK=N, target="cuda"),
                      kdsl.LaunchError, r"target 'cuda'"))


@pytest.mark.parametrize("launch, error, reason", CASES)
def test_bad_launch_is_refused_before_anything_runs(launch, error, reason):
    out = poisoned(N, np.float32)
    with pytest.raises(kdsl.KdslError) as info:
        launch(out)
    assert type(info.value) is error, info.value
    assert re.search(reason, str(info.value)), str(info.value)
    assert np.isnan(out).all()


def test_the_catalogue_has_enough_distinct_launches():
    assert len({c.id for c in CASES}) == len(CASES) >= 25


# --- positive controls: what looks wrong but is a valid launch --------------------------------

@pytest.mark.parametrize("target", ["cpu", "interpret"])
@pytest.mark.parametrize("grid", [0, (0,), (4, 0), (1, 1, 0), lambda meta: (0,)])
def test_an_empty_grid_runs_nothing(grid, target):
    out = poisoned(N, np.float32)
    fill[grid](out, 1.0, N, BLOCK=N, target=target)
    assert np.isnan(out).all()


@pytest.mark.parametrize("target", ["cpu", "interpret"])
def test_zero_size_arrays_with_n_zero_run_and_write_nothing(target):
    out = poisoned(N, np.float32)
    copy[(1,)](np.zeros(0, np.float32), np.zeros(0, np.float32), 0, BLOCK=N, target=target)
    copy[(1,)](np.zeros(0, np.float32), out, 0, BLOCK=N, target=target)
    assert np.isnan(out).all()


def test_the_refused_read_only_launch_stays_refused_and_the_writable_one_runs():
    out = poisoned(N, np.float32)
    for _ in range(2):
        with pytest.raises(kdsl.LaunchError, match="read-only array"):
            fill[(1,)](read_only(out), 1.0, N, BLOCK=N)
    assert np.isnan(out).all()
    fill[(1,)](out, 1.0, N, BLOCK=N)
    np.testing.assert_array_equal(out, 1.0)
