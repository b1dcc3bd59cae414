"""Target-independent passes over kdsl IR.

A pass is a small object with a `name` and `run(module)`, which rewrites the
module in place. The pipeline is one flat list, read top to bottom.
"""
from __future__ import annotations

from kdsl.ir.core import Module
from kdsl.ir.printer import print_module
from kdsl.ir.verifier import verify_module


class Pass:
    """Base of every pass: subclasses set `name` and implement `run`."""

    name: str = "pass"

    def run(self, module: Module) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<pass {self.name}>"


def run_pipeline(module: Module, passes: list[Pass], verify: bool = True,
                 record: dict[str, str] | None = None) -> Module:
    """Run `passes` in order on `module` (in place).

    With `verify`, the module is verified after each pass, so a broken rewrite is
    caught at the pass that made it. With `record`, the printed IR after each pass
    is stored under the pass's name (a repeated pass gets `name.2`, `name.3`, ...).
    """
    for p in passes:
        p.run(module)
        if verify:
            verify_module(module)
        if record is not None:
            key, n = p.name, 1
            while key in record:
                n += 1
                key = f"{p.name}.{n}"
            record[key] = print_module(module)
    return module


def default_passes() -> list[Pass]:
    """The target-independent pipeline every backend starts from.

    Canonicalize runs again after CSE, where merged operands expose `x - x`,
    `select c, x, x` and the like; DCE runs last to sweep what both leave dead.
    """
    # Imported here: the pass modules import `Pass` from this package.
    from kdsl.ir.passes.canonicalize import Canonicalize
    from kdsl.ir.passes.cse import CSE
    from kdsl.ir.passes.dce import DCE
    from kdsl.ir.passes.inline import Inline

    return [Inline(), Canonicalize(), CSE(), Canonicalize(), DCE()]


__all__ = ["Pass", "default_passes", "run_pipeline"]
