"""Launches through `kernel[grid](..., target="sim")`: the whole GPU path (lowering, PTX, device
interface, argument packing) on Triton's tutorial kernels, checked against numpy by the conformance
suite's own tests. The whole suite runs on the simulator with `KDSL_TEST_TARGETS=sim`."""
import numpy as np
import pytest

from tests.language import test_tutorials as tutorials

PASSING_ON_SIM = [
    tutorials.test_vector_add,
    tutorials.test_vector_add_on_torch_tensors,
    tutorials.test_softmax_on_strided_rows,
    tutorials.test_transposed_operand_through_strides,
    tutorials.test_philox_known_answers,
    tutorials.test_seeded_dropout_keep_mask_and_scale,
    tutorials.test_layer_norm_forward,
]


@pytest.mark.parametrize("tutorial", PASSING_ON_SIM, ids=lambda t: t.__name__)
def test_tutorial_kernels_on_the_simulator(tutorial):
    tutorial(target="sim")


def test_matmul_with_masked_edges_on_the_simulator():
    tutorials.test_matmul_with_masked_edges(target="sim", dtype=np.float16)


@pytest.mark.parametrize("causal", [False, True])
def test_fused_attention_forward_on_the_simulator(causal):
    tutorials.test_fused_attention_forward(target="sim", causal=causal)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_layer_norm_backward_on_the_simulator(dtype):
    tutorials.test_layer_norm_backward_accumulates_dw_db_under_locks(target="sim", dtype=dtype)
