"""kdsl kernels behind torch operators: eager, under torch.compile, and checked by torch.library.opcheck."""
import numpy as np
import pytest

import kdsl
import kdsl.language as kl

torch = pytest.importorskip("torch")
import kdsl.torch  # noqa: E402  (needs torch)


@kdsl.kernel
def bias_relu(x_ptr, bias_ptr, out_ptr, n_cols, BLOCK: kl.constexpr):
    row = kl.program_id(0)
    cols = kl.arange(0, BLOCK)
    mask = cols < n_cols
    x = kl.load(x_ptr + row * n_cols + cols, mask=mask)
    b = kl.load(bias_ptr + cols, mask=mask)
    kl.store(out_ptr + row * n_cols + cols, kl.maximum(x + b, 0.0), mask=mask)


@kdsl.torch.custom_op("kdsl_tests::bias_relu", mutates_args=())
def bias_relu_op(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    x = x.contiguous()
    out = torch.empty_like(x)
    bias_relu[(x.shape[0],)](x, bias.contiguous(), out, x.shape[1], BLOCK=kdsl.next_power_of_2(x.shape[1]))
    return out


@bias_relu_op.register_fake
def _(x, bias):
    return torch.empty_like(x)


@kdsl.torch.custom_op("kdsl_tests::bias_relu_", mutates_args=("x",))
def bias_relu_inplace(x: torch.Tensor, bias: torch.Tensor) -> None:
    bias_relu[(x.shape[0],)](x, bias, x, x.shape[1], BLOCK=kdsl.next_power_of_2(x.shape[1]))


def reference(x, bias):
    return np.maximum(x.double().numpy() + bias.double().numpy(), 0)


def inputs(rows=37, cols=100, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, cols, generator=g), torch.randn(cols, generator=g)


def test_eager():
    x, bias = inputs()
    np.testing.assert_allclose(bias_relu_op(x, bias).numpy(), reference(x, bias), rtol=1e-6)
    np.testing.assert_allclose(torch.ops.kdsl_tests.bias_relu(x.T.contiguous().T, bias).numpy(),
                               reference(x, bias), rtol=1e-6)


def test_under_torch_compile_without_graph_breaks():
    @torch.compile(backend="aot_eager", fullgraph=True)
    def model(x, bias):
        return bias_relu_op(x * 2, bias).sum(dim=1)

    x, bias = inputs(seed=1)
    expected = reference(x * 2, bias).sum(axis=1)
    np.testing.assert_allclose(model(x, bias).numpy(), expected, rtol=1e-5)
    x, bias = inputs(rows=5, cols=64, seed=2)  # another shape
    np.testing.assert_allclose(model(x, bias).numpy(), reference(x * 2, bias).sum(axis=1), rtol=1e-5)


def test_mutating_op_under_compile():
    @torch.compile(backend="aot_eager", fullgraph=True)
    def model(x, bias):
        y = x + 1
        bias_relu_inplace(y, bias)
        return y

    x, bias = inputs(seed=3)
    np.testing.assert_allclose(model(x, bias).numpy(), reference(x + 1, bias), rtol=1e-6)


def test_opcheck():
    x, bias = inputs(seed=4)
    torch.library.opcheck(bias_relu_op, (x, bias))
    torch.library.opcheck(bias_relu_inplace, (x.clone(), bias))


def test_wrapping_a_kernel_itself_is_an_error():
    with pytest.raises(kdsl.KdslError, match="wraps a Python function that launches kdsl kernels, not a kernel"):
        kdsl.torch.custom_op("kdsl_tests::wrong", bias_relu, mutates_args=())
