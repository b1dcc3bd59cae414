"""Launches through `kernel[grid](..., target="sim")`: the whole GPU path (lowering, PTX, device
interface, argument packing) on Triton's tutorial kernels, checked against numpy by the conformance
suite's own tests. The whole suite runs on the simulator with `KDSL_TEST_TARGETS=sim`."""
import pytest

from tests.language import test_tutorials as tutorials

PASSING_ON_SIM = [
    tutorials.test_vector_add,
    tutorials.test_vector_add_on_torch_tensors,
    tutorials.test_matmul_with_masked_edges,
    tutorials.test_transposed_operand_through_strides,
    tutorials.test_philox_known_answers,
    tutorials.test_seeded_dropout_keep_mask_and_scale,
    tutorials.test_layer_norm_forward,
    tutorials.test_layer_norm_backward_accumulates_dw_db_under_locks,
    tutorials.test_fused_attention_forward,
]


@pytest.mark.parametrize("tutorial", PASSING_ON_SIM, ids=lambda t: t.__name__)
def test_tutorial_kernels_on_the_simulator(tutorial):
    tutorial(target="sim")
