"""Golden IR per pass: each `golden/<pass>/<case>.ir` holds the input IR, a
`// after <pass>:` line, and the IR the pass must print (compared as text)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from kdsl.ir import parse_module, print_module, verify_module
from kdsl.ir.passes import Pass, default_passes, run_pipeline
from kdsl.ir.passes.canonicalize import Canonicalize
from kdsl.ir.passes.cse import CSE
from kdsl.ir.passes.dce import DCE
from kdsl.ir.passes.inline import Inline

GOLDEN = Path(__file__).parent / "golden"
PIPELINES: dict[str, Callable[[], list[Pass]]] = {
    "canonicalize": lambda: [Canonicalize()],
    "cse": lambda: [CSE()],
    "dce": lambda: [DCE()],
    "inline": lambda: [Inline()],
    "pipeline": default_passes,
}
CASES = sorted(GOLDEN.glob("*/*.ir"))


def split_case(path: Path) -> tuple[str, str]:
    before, after = path.read_text().split(f"// after {path.parent.name}:\n")
    return before, after


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_golden(path: Path) -> None:
    before, expected = split_case(path)
    module = parse_module(before)
    verify_module(module)
    passes: list[Pass] = PIPELINES[path.parent.name]()
    run_pipeline(module, passes, verify=True)
    assert print_module(module) == expected


def test_every_pass_has_golden_cases() -> None:
    assert {p.parent.name for p in CASES} == set(PIPELINES)
