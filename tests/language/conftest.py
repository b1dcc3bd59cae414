"""The language conformance suite runs every test that takes `target` on every target listed here."""

TARGETS = ["cpu", "interpret"]


def pytest_generate_tests(metafunc):
    if "target" in metafunc.fixturenames:
        metafunc.parametrize("target", TARGETS)
