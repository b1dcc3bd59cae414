"""Run-time debugging (API.md "debugging"): `kl.device_print` writes Triton's lines through
Python's stdout in program order; `kl.device_assert` and `assert` stop the launch with
`kdsl.DeviceAssertionError` naming the kernel, line, program, element and message."""
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kdsl
import kdsl.language as kl
from tests.helpers import poisoned, random_array

SETTINGS = settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _lines(pid, prefix, values, hex=False, fmt=None):
    """The expected lines for one operand, written independently of kdsl's formatter."""
    values = np.asarray(values)
    widths = [len(str(d - 1)) for d in values.shape]
    out = []
    for index in np.ndindex(*values.shape):
        coords = ", ".join(str(i).rjust(w) for i, w in zip(index, widths))
        out.append(f"pid ({pid[0]}, {pid[1]}, {pid[2]}) idx ({coords}){prefix}{fmt(values[index])}")
    return out


@kdsl.kernel
def print_values(x_ptr, i_ptr, n, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    x = kl.load(x_ptr + offs)
    kl.device_print("x", x)
    kl.device_print("i=", kl.load(i_ptr + offs), n)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), grid=st.integers(1, 3))
def test_print_writes_one_line_per_element_in_program_order(target, capsys, seed, grid):
    rng = np.random.default_rng(seed)
    x = random_array(rng, 8 * grid, np.float32)
    i = random_array(rng, 8 * grid, np.int64, full_range=True)
    capsys.readouterr()
    print_values[(grid,)](x, i, -7, BLOCK=8, target=target)
    expected = []
    for p in range(grid):
        pid = (p, 0, 0)
        expected += _lines(pid, " x: ", x[8 * p:8 * p + 8], fmt=lambda v: "%f" % v)
        expected += _lines(pid, " i=: (operand 0) ", i[8 * p:8 * p + 8], fmt=lambda v: str(int(v)))
        expected += [f"pid ({p}, 0, 0) idx () i=: (operand 1) -7"]
    lines = capsys.readouterr().out.splitlines()
    # on the CPU, programs run on several threads: lines keep their order within each program only
    assert sorted(lines, key=lambda line: line.split(" idx ")[0]) == expected


@kdsl.kernel
def print_2d_hex(x_ptr, M: kl.constexpr, N: kl.constexpr):
    idx = kl.arange(0, M)[:, None] * N + kl.arange(0, N)[None, :]
    kl.device_print("", kl.load(x_ptr + idx), hex=True)
    kl.device_print(" u8 ", kl.load(x_ptr + idx).to(kl.uint8, bitcast=True), hex=True)
    kl.device_print("half", (kl.load(x_ptr + idx) == 0).to(kl.float16) * 1.5, (idx > 3).to(kl.int1))
    kl.device_print("no values")


def test_print_pads_indices_and_prints_hex_and_narrow_types(target, capfd):
    x = np.array([[-1, 0, 5, 127, -128, 2, 3, 0x10, 0, 1, 2, 3, 4, 5, 6, 7]] * 2, np.int8).reshape(2, 16)
    print_2d_hex[(1,)](x, M=2, N=16, target=target)
    out = capfd.readouterr().out.splitlines()
    pid = (0, 0, 0)
    expected = _lines(pid, ": ", x, fmt=lambda v: f"0x{int(v) & 0xFF:02x}")  # "" becomes ": ", as in Triton
    expected += _lines(pid, " u8: ", x.view(np.uint8), fmt=lambda v: f"0x{int(v):02x}")
    expected += _lines(pid, " half: (operand 0) ", (x == 0) * 1.5, fmt=lambda v: "%f" % v)
    expected += _lines(pid, " half: (operand 1) ", np.arange(32).reshape(2, 16) > 3, fmt=lambda v: str(int(v)))
    expected += ["pid (0, 0, 0) no values"]
    assert out == expected
    assert out[1] == "pid (0, 0, 0) idx (0,  1): 0x00" and out[16] == "pid (0, 0, 0) idx (1,  0): 0xff"


@kdsl.kernel
def print_float_hex(x_ptr):
    kl.device_print("f", kl.load(x_ptr + kl.arange(0, 4)), hex=True)


def test_float_hex_is_c_hexadecimal_floating_point(target, capsys):
    x = np.array([1.0, 1.5, -0.375, 0.0], np.float64)
    print_float_hex[(1,)](x, target=target)
    values = [line.split(": ")[1] for line in capsys.readouterr().out.splitlines()]
    assert values == ["0x1p+0", "0x1.8p+0", "-0x1.8p-2", "0x0p+0"]


@kdsl.kernel
def print_big_block(x_ptr, BLOCK: kl.constexpr):
    x = kl.load(x_ptr + kl.arange(0, BLOCK))
    kl.device_print("sum", kl.sum(x, axis=0))


def test_print_reaches_stdout_from_a_kernel_on_its_own_thread(target, capsys):
    """A 1 MiB block exceeds the caller's stack budget: the CPU runs the kernel on a new thread."""
    x = np.ones(1 << 18, np.float32)
    print_big_block[(1,)](x, BLOCK=1 << 18, target=target)
    assert capsys.readouterr().out == "pid (0, 0, 0) idx () sum: 262144.000000\n"


# assertions ------------------------------------------------------------------------------

@kdsl.kernel
def checked_copy(x_ptr, out_ptr, limit, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    x = kl.load(x_ptr + offs)
    kl.store(out_ptr + offs, x)
    assert x < limit, "value over the limit"
    kl.store(out_ptr + offs, x + 1)


def test_failing_assert_stops_the_launch_and_names_everything(target):
    x = np.arange(32, dtype=np.int32)
    x[21] = 1000
    out = poisoned(32, np.int32)
    with pytest.raises(kdsl.DeviceAssertionError) as info:
        checked_copy[(4,)](x, out, 100, BLOCK=8, target=target)
    e = info.value
    assert isinstance(e, kdsl.KdslError)
    assert (e.kernel, e.pid, e.index, e.message) == ("checked_copy", (2, 0, 0), (5,), "value over the limit")
    text = str(e)
    assert "kernel 'checked_copy'" in text and "program (2, 0, 0)" in text and "element (5,)" in text
    assert re.search(r"test_debugging\.py:\d+:4", text)
    assert '    assert x < limit, "value over the limit"\n' in text
    assert "\n        " + "^" * len('assert x < limit, "value over the limit"') + "\n" in text
    assert text.endswith("value over the limit")
    np.testing.assert_array_equal(out[:16], x[:16] + 1)  # programs 0 and 1 ran to the end
    np.testing.assert_array_equal(out[16:24], x[16:24])  # program 2 stopped at the assert
    # program 3 never ran, or (running on another CPU thread or GPU SM before the failure) ran whole
    assert (out[24:] == poisoned(8, np.int32)).all() or (target in ("cpu", "cuda") and (out[24:] == x[24:] + 1).all())


def test_a_launch_after_a_failed_assert_runs_normally(target):
    x = np.arange(16, dtype=np.int32)
    out = poisoned(16, np.int32)
    with pytest.raises(kdsl.DeviceAssertionError):
        checked_copy[(2,)](x, out, 3, BLOCK=8, target=target)
    checked_copy[(2,)](x, out, 100, BLOCK=8, target=target)
    np.testing.assert_array_equal(out, x + 1)


@kdsl.kernel
def device_asserts(x_ptr, CASE: kl.constexpr):
    idx = kl.arange(0, 4)[:, None] * 8 + kl.arange(0, 8)[None, :]
    x = kl.load(x_ptr + idx)
    if CASE == "2d":
        kl.device_assert(x != 13)
    elif CASE == "mask":
        kl.device_assert(x != 13, "masked", mask=idx != 13)
        kl.device_assert(x < 30, "unmasked")
    elif CASE == "scalar":
        for i in range(3):
            assert kl.sum(x, axis=None) + i < 497, "sum"
    elif CASE == "device_function":
        check_positive(x - 20)
    else:
        assert x >= 0


@kdsl.kernel
def check_positive(v):
    assert v > -20, "not positive"


@pytest.mark.parametrize("case, index, message, line", [
    ("2d", (1, 5), "", "kl.device_assert(x != 13)"),
    ("mask", (3, 6), "unmasked", 'kl.device_assert(x < 30, "unmasked")'),
    ("scalar", None, "sum", 'assert kl.sum(x, axis=None) + i < 497, "sum"'),
    ("device_function", (0, 0), "not positive", 'assert v > -20, "not positive"'),
])
def test_assert_reports_the_first_failing_element(target, case, index, message, line):
    x = np.arange(32, dtype=np.int32)
    with pytest.raises(kdsl.DeviceAssertionError) as info:
        device_asserts[(1,)](x, CASE=case, target=target)
    assert (info.value.index, info.value.message) == (index, message)
    assert line in str(info.value)


def test_passing_asserts_change_nothing(target):
    device_asserts[(1,)](np.arange(32, dtype=np.int32), CASE="none", target=target)


@kdsl.kernel
def bad_assert(x_ptr, CASE: kl.constexpr):
    x = kl.load(x_ptr)
    if CASE == "message":
        kl.device_assert(x > 0, x)
    elif CASE == "prefix":
        kl.device_print(x)
    else:
        kl.device_assert("x > 0")


@pytest.mark.parametrize("case, message", [
    ("message", "kl.device_assert's message must be a string constant"),
    ("prefix", "kl.device_print's prefix must be a string constant"),
    ("condition", "kl.device_assert's condition must be a boolean scalar or block, got str"),
])
def test_debugging_builtins_reject_bad_arguments(target, case, message):
    with pytest.raises(kdsl.CompilationError, match=re.escape(message)):
        bad_assert[(1,)](np.ones(1, np.float32), CASE=case, target=target)


def _kernel_with_captured_limit():
    limit, scale = 10, 2

    @kdsl.kernel
    def captured_limit(x_ptr):
        x = kl.load(x_ptr + kl.arange(0, 4)) * scale
        assert x < limit, "over the captured limit"
    return captured_limit


captured_limit = _kernel_with_captured_limit()


def test_assert_in_a_kernel_with_captured_values(target):
    captured_limit[(1,)](np.array([1, 2, 3, 4], np.int32), target=target)
    with pytest.raises(kdsl.DeviceAssertionError, match="over the captured limit") as info:
        captured_limit[(1,)](np.array([1, 2, 6, 4], np.int32), target=target)
    assert info.value.index == (2,)


@kdsl.kernel
def python_print(x_ptr):
    print("x", kl.load(x_ptr + kl.arange(0, 2)))


def test_python_print_in_a_compiled_kernel_is_device_print(capsys):
    python_print[(1,)](np.array([0.5, 2.0], np.float32), target="cpu")
    assert capsys.readouterr().out == "pid (0, 0, 0) idx (0) x: 0.500000\npid (0, 0, 0) idx (1) x: 2.000000\n"


@kdsl.kernel
def print_bf16_and_pointers(x_ptr):
    offs = kl.arange(0, 2)
    kl.device_print("b", kl.load(x_ptr + offs).to(kl.bfloat16))
    kl.device_print("p", x_ptr + offs)


def test_print_bf16_values_and_pointer_addresses(target, capsys):
    x = np.array([1.3, -2.5], np.float32)
    print_bf16_and_pointers[(1,)](x, target=target)
    address = x.ctypes.data
    assert capsys.readouterr().out.splitlines() == [
        "pid (0, 0, 0) idx (0) b: 1.296875", "pid (0, 0, 0) idx (1) b: -2.500000",
        f"pid (0, 0, 0) idx (0) p: {address:#x}", f"pid (0, 0, 0) idx (1) p: {address + 4:#x}"]
