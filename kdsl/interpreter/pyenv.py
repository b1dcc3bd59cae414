"""The Python environment an interpreted kernel runs in: its own globals, with the kernel `range`,
`min` and `max`.

In a compiled kernel, `for i in range(a, b)` gives a runtime `i` typed from
its bounds (at least i32, `semantic.loop_type`). To match, each interpreted
function runs as a copy that shares its code and closure but sees a globals
snapshot whose `range` yields typed scalars, and whose `min`/`max` of kl values
are `kl.minimum`/`kl.maximum` (as Triton maps them). The module's own globals and
the builtins stay untouched.
"""
from __future__ import annotations

import builtins
import functools
import types
from typing import Any, Callable, Iterator

from kdsl import language
from kdsl.errors import CompilationError, KdslError
from kdsl.frontend import semantic as sem
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


def _elementwise(builtin: Callable, kl_fn: Callable) -> Callable:
    """Python's `min`/`max` as a kernel sees them: `kl.minimum`/`kl.maximum` once a kl value is involved."""
    def call(*args: Any, **kwargs: Any) -> Any:
        if len(args) > 1 and not kwargs and any(isinstance(a, InterpTensor) for a in args):
            return functools.reduce(kl_fn, args)
        return builtin(*args, **kwargs)

    return call


def interpreted(fn: Callable) -> Callable:
    """A copy of `fn` whose globals `range`, `min` and `max` are the kernel ones."""
    env = dict(fn.__globals__)
    env["range"] = kernel_range
    env["min"] = _elementwise(builtins.min, language.minimum)
    env["max"] = _elementwise(builtins.max, language.maximum)
    copy = types.FunctionType(fn.__code__, env, fn.__name__, fn.__defaults__, fn.__closure__)
    copy.__kwdefaults__ = fn.__kwdefaults__
    return copy
