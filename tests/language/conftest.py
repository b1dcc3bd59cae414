"""The language conformance suite runs every test on every target listed here."""
import pytest

TARGETS = ["cpu"]


@pytest.fixture(params=TARGETS)
def target(request):
    return request.param

