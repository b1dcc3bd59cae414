"""The printer and parser agree on every well-typed module the generator can build."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from kdsl.ir import parse_module, print_module, verify_module
from kdsl.ir.passes import default_passes, run_pipeline

from tests.ir.irgen import modules

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(modules())
def test_print_parse_print_is_stable(module) -> None:
    verify_module(module)
    for locs in (False, True):
        text = print_module(module, locs=locs)
        parsed = parse_module(text)
        verify_module(parsed)
        assert print_module(parsed, locs=locs) == text


@SETTINGS
@given(modules())
def test_default_pipeline_keeps_random_modules_valid_and_is_idempotent(module) -> None:
    record: dict[str, str] = {}
    run_pipeline(module, default_passes(), verify=True, record=record)
    assert not any(op.name == "call" for op in module.kernel.walk())
    assert list(module.functions) == ["kern"]
    text = print_module(module, locs=True)
    assert print_module(parse_module(text), locs=True) == text
    run_pipeline(module, default_passes())
    assert print_module(module, locs=True) == text
