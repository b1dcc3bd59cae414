"""A kernel's Python source: its AST, and the offsets that map AST positions to the file."""
from __future__ import annotations

import ast
import inspect
import re
import textwrap
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from kdsl.errors import CompilationError, Loc


@dataclass
class KernelSource:
    """The parsed function plus what name lookup inside it needs."""

    name: str
    file: str
    line_offset: int
    col_offset: int
    tree: ast.FunctionDef
    globals: dict[str, Any]
    closure: dict[str, Any]
    params: list[str]
    constexprs: frozenset[str]
    defaults: dict[str, Any]

    def bind(self, args: Sequence[Any], kwargs: dict[str, Any], error: type[Exception]) -> dict[str, Any]:
        """Every parameter's value (defaults applied, `constexpr(...)` unwrapped), or `error` saying what is wrong."""
        params = self.params
        if len(args) > len(params):
            raise error(f"'{self.name}' takes {len(params)} arguments ({', '.join(params)}), got {len(args)}")
        given = dict(zip(params, args))
        for k, v in kwargs.items():
            if k not in params:
                raise error(f"'{self.name}' has no parameter '{k}' (parameters: {', '.join(params)})")
            if k in given:
                raise error(f"'{self.name}' got two values for '{k}'")
            given[k] = v
        for p in params:
            if p not in given:
                if p not in self.defaults:
                    kind = "compile-time constant" if p in self.constexprs else "argument"
                    raise error(f"'{self.name}' is missing the {kind} '{p}'")
                given[p] = self.defaults[p]
        from kdsl.language import constexpr

        return {p: given[p].value if isinstance(given[p], constexpr) else given[p] for p in params}

    def loc(self, node: ast.AST) -> Loc:
        line = getattr(node, "lineno", None)
        if line is None:
            return Loc(self.file, self.line_offset + self.tree.lineno, self.col_offset)
        end = getattr(node, "end_col_offset", None)
        same_line = getattr(node, "end_lineno", line) == line
        return Loc(
            self.file,
            self.line_offset + line,
            self.col_offset + node.col_offset,
            self.col_offset + end if end is not None and same_line else None,
        )


def _is_constexpr_annotation(annotation: Any) -> bool:
    from kdsl.language import constexpr

    if annotation is constexpr or isinstance(annotation, constexpr):
        return True
    return isinstance(annotation, str) and annotation.split(".")[-1] == "constexpr"


def read_source(fn: Callable) -> KernelSource:
    """Parse `fn`'s source; its line and column offsets make error carets land in the file."""
    name = getattr(fn, "__name__", repr(fn))
    try:
        lines, first_line = inspect.getsourcelines(fn)
        file = inspect.getsourcefile(fn) or "<unknown>"
    except (OSError, TypeError) as e:
        raise CompilationError(f"cannot read the source of '{name}' ({e}); kernels must be defined in a file",
                               kernel=name) from None
    if fn.__code__.co_name == "<lambda>":
        raise CompilationError("a kernel must be a `def` function, not a lambda; write `def name(...):` and "
                               "decorate it with @kdsl.kernel", Loc(file, first_line, _lambda_column(lines[0])),
                               name)
    text = "".join(lines)
    dedented = textwrap.dedent(text)
    first = next((ln for ln in lines if ln.strip()), "")
    indent = len(first) - len(first.lstrip()) if dedented != text else 0
    try:
        module = ast.parse(dedented)
    except SyntaxError as e:
        raise CompilationError(f"syntax error: {e.msg}", Loc(file, first_line - 1 + (e.lineno or 1), indent + (e.offset or 1) - 1),
                               name) from None
    tree = next((n for n in module.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))), None)
    if not isinstance(tree, ast.FunctionDef):
        raise CompilationError("a kernel must be a plain `def` function, not `async def`",
                               Loc(file, first_line + (tree.lineno - 1 if tree else 0), indent), name)
    signature = inspect.signature(fn)
    params, constexprs, defaults = [], set(), {}
    for p in signature.parameters.values():
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            raise CompilationError(f"kernel parameters cannot be *args or **kwargs ('{p.name}')",
                                   Loc(file, first_line + tree.lineno - 1, indent), name)
        params.append(p.name)
        if _is_constexpr_annotation(p.annotation):
            constexprs.add(p.name)
        if p.default is not p.empty:
            defaults[p.name] = p.default
    code = fn.__code__
    closure = {n: c.cell_contents for n, c in zip(code.co_freevars, fn.__closure__ or ()) if _cell_filled(c)}
    return KernelSource(name, file, first_line - 1, indent, tree, fn.__globals__, closure, params,
                        frozenset(constexprs), defaults)


def _lambda_column(line: str) -> int:
    """Where the keyword `lambda` starts in a line of source (0 when it is not there)."""
    found = re.search(r"\blambda\b", line)
    return found.start() if found else 0


def _cell_filled(cell: Any) -> bool:
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True
