"""docs/language.md is generated from the code: it must be current and show every `kl` builtin."""
import dataclasses
import importlib.util
import sys
from pathlib import Path

import pytest

import kdsl.language as kl

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "build_reference.py"


@pytest.fixture(scope="module")
def build_reference():
    spec = importlib.util.spec_from_file_location("build_reference", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the script runs
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_every_builtin_and_public_name_is_in_a_topic(build_reference):
    assert build_reference.coverage_problems() == []


def test_language_md_is_current(build_reference):
    assert build_reference.stale_report(build_reference.render()) is None


def test_language_md_shows_every_builtin(build_reference):
    text = build_reference.OUTPUT.read_text()
    missing = [name for name in kl.BUILTINS.values() if f"### `kl.{name}`" not in text]
    assert missing == []


def test_an_ungrouped_builtin_stops_the_build(build_reference, monkeypatch):
    first, *rest = build_reference.LANGUAGE_TOPICS
    without_program_id = dataclasses.replace(first, names=tuple(n for n in first.names if n != "program_id"))
    monkeypatch.setattr(build_reference, "LANGUAGE_TOPICS", (without_program_id, *rest))
    assert "kl.program_id is in no topic of docs/build_reference.py" in build_reference.coverage_problems()
    with pytest.raises(SystemExit, match="kl.program_id is in no topic"):
        build_reference.render()
