"""The Python environment an interpreted kernel runs in: its own globals, with the kernel `range`,
`min` and `max`.

In a compiled kernel, `for i in range(a, b)` gives a runtime `i` typed from
its bounds (at least i32, `semantic.loop_type`). To match, each interpreted
function runs as a copy that shares its closure but sees a globals snapshot
whose `range` yields typed scalars, and whose `min`/`max` of kl values are
`kl.minimum`/`kl.maximum` (as Triton maps them). The module's own globals and
the builtins stay untouched. A function with `assert` statements runs recompiled,
each `assert cond, msg` made a `kl.device_assert(cond, msg)` call at the same
place in the file, as the compiler reads them.
"""
from __future__ import annotations

import ast
import builtins
import copy
import functools
import types
from typing import Any, Callable, Iterator

from kdsl import language
from kdsl.errors import CompilationError, KdslError
from kdsl.frontend import semantic as sem
from kdsl.frontend.source import KernelSource, read_source
from kdsl.interpreter.evaluator import EvalValue
from kdsl.interpreter.tensor import InterpTensor, plain


def kernel_range(*args: Any) -> Iterator[InterpTensor]:
    """`range` as a kernel's runtime `for` loop sees it: typed scalars, positive steps only."""
    if not 1 <= len(args) <= 3:
        raise CompilationError("range() takes 1 to 3 arguments")
    bounds = [plain(a) for a in args]
    start, end, step = (0, bounds[0], 1) if len(bounds) == 1 else (*bounds, 1)[:3]
    iv_type = sem.loop_type(start, end, step)
    if int(step) <= 0:
        raise KdslError(f"range() got the step {int(step)} at run time; kernel loops need a positive step")
    for i in range(int(start), int(end), int(step)):
        yield InterpTensor(EvalValue.of(iv_type, i))


_DEVICE_ASSERT = "__kdsl_device_assert__"


class _AssertToCall(ast.NodeTransformer):
    def visit_Assert(self, node: ast.Assert) -> ast.Expr:
        args = [node.test] + ([] if node.msg is None else [node.msg])
        call = ast.Call(ast.Name(_DEVICE_ASSERT, ast.Load()), args, [])
        for made in (call, call.func):
            ast.copy_location(made, node)
        return ast.copy_location(ast.Expr(call), node)


def _placed_in_file(tree: ast.AST, src: KernelSource) -> None:
    """Positions of the dedented source's nodes as they are in the file."""
    ast.increment_lineno(tree, src.line_offset)
    for node in ast.walk(tree):
        if isinstance(getattr(node, "col_offset", None), int):
            node.col_offset += src.col_offset  # type: ignore[attr-defined]
            if getattr(node, "end_col_offset", None) is not None:
                node.end_col_offset += src.col_offset  # type: ignore[attr-defined]


def _code_with_device_asserts(fn: Callable) -> types.CodeType:
    """`fn`'s code, recompiled with its asserts as device_assert calls.

    The function is compiled inside an outer one that defines its free
    variables, so that it reads them from its closure cells as the original does."""
    src = read_source(fn)
    tree = _AssertToCall().visit(copy.deepcopy(src.tree))
    tree.decorator_list = []
    _placed_in_file(tree, src)
    free = fn.__code__.co_freevars
    outer = ast.parse(f"def outer():\n    {' = '.join(free) if free else '_'} = None\n").body[0]
    outer.body.append(tree)  # type: ignore[attr-defined]
    module = ast.fix_missing_locations(ast.Module([outer], []))
    outer_code = next(c for c in compile(module, src.file, "exec").co_consts if isinstance(c, types.CodeType))
    return next(c for c in outer_code.co_consts if isinstance(c, types.CodeType) and c.co_name == tree.name)


def _elementwise(builtin: Callable, kl_fn: Callable) -> Callable:
    """Python's `min`/`max` as a kernel sees them: `kl.minimum`/`kl.maximum` once a kl value is involved."""
    def call(*args: Any, **kwargs: Any) -> Any:
        if len(args) > 1 and not kwargs and any(isinstance(a, InterpTensor) for a in args):
            return functools.reduce(kl_fn, args)
        return builtin(*args, **kwargs)

    return call


def _has_assert(fn: Callable) -> bool:
    try:
        tree = read_source(fn).tree
    except CompilationError:
        return False
    return any(isinstance(node, ast.Assert) for node in ast.walk(tree))


def interpreted(fn: Callable) -> Callable:
    """A copy of `fn` whose globals `range`, `min` and `max` are the kernel ones (and whose asserts are
    device asserts)."""
    env = dict(fn.__globals__)
    env["range"] = kernel_range
    env["min"] = _elementwise(builtins.min, language.minimum)
    env["max"] = _elementwise(builtins.max, language.maximum)
    code, closure = fn.__code__, fn.__closure__
    if _has_assert(fn):
        code = _code_with_device_asserts(fn)
        env[_DEVICE_ASSERT] = language.device_assert
        cells = dict(zip(fn.__code__.co_freevars, fn.__closure__ or ()))
        closure = tuple(cells[name] for name in code.co_freevars) or None
    made = types.FunctionType(code, env, fn.__name__, fn.__defaults__, closure)
    made.__kwdefaults__ = fn.__kwdefaults__
    return made
