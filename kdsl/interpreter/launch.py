"""Running a launch on the `interpret` target: the user's function, once per program id.

A `Session` is active (see `context`) for the whole launch: `kl.*` builtins and
`InterpTensor` operators find its evaluating builder there, and its current
program id answers `program_id`. Nothing is compiled.
"""
from __future__ import annotations

import inspect
import os
import sys
import traceback
from contextlib import contextmanager
from contextvars import ContextVar
from types import TracebackType
from typing import Any, Callable, Iterator

import kdsl
from kdsl.errors import CompilationError, DeviceAssertionError, KdslError, Loc
from kdsl.frontend.builtins import BuiltinCall, call_builtin, range_bounds
from kdsl.interpreter.context import ACTIVE
from kdsl.interpreter.evaluator import EvalValue, EvaluatingBuilder
from kdsl.interpreter.memory import CheckedMemory, WriteLog
from kdsl.interpreter.pyenv import interpreted, kernel_range
from kdsl.interpreter.tensor import InterpTensor, plain, wrap
from kdsl.ir.types import PointerType
from kdsl.runtime.arrays import adapt_array
from kdsl.runtime.binding import BoundLaunch

# Set by `recording_writes`: interpreted launches record which store wrote each address.
WRITE_LOG: ContextVar[WriteLog | None] = ContextVar("kdsl_write_log", default=None)
_KDSL_DIR = os.path.dirname(os.path.abspath(kdsl.__file__)) + os.sep


def _is_user_file(filename: str) -> bool:
    return not os.path.abspath(filename).startswith(_KDSL_DIR)


def raising_user_line(tb: TracebackType | None) -> Loc | None:
    """The innermost user frame of a traceback, with its column span where Python knows it."""
    user = [f for f in traceback.extract_tb(tb) if _is_user_file(f.filename)]
    if not user:
        return None
    f = user[-1]
    same_line = f.end_lineno in (None, f.lineno)
    return Loc(f.filename, f.lineno or 0, f.colno or 0, f.end_colno if same_line else None)


def current_user_line() -> Loc | None:
    """Where the running kernel code is: the innermost frame outside the kdsl package."""
    frame = sys._getframe(1)
    while frame is not None and not _is_user_file(frame.f_code.co_filename):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return None
    line, end_line, col, end_col = list(frame.f_code.co_positions())[frame.f_lasti // 2]
    return Loc(frame.f_code.co_filename, line or frame.f_lineno, col or 0, end_col if end_line == line else None)


class Session:
    """One interpreted launch: grid, current program id, checked memory, evaluating builder."""

    def __init__(self, kernel_name: str, grid: tuple[int, int, int]):
        self.kernel_name = kernel_name
        self.grid = grid
        self.pid = (0, 0, 0)
        self.memory = CheckedMemory(self._where, WRITE_LOG.get())
        self.builder = EvaluatingBuilder(self)
        self._functions: dict[Callable, Callable] = {}

    def program_id(self, axis: int) -> int:
        return self.pid[axis]

    def num_programs(self, axis: int) -> int:
        return self.grid[axis]

    def _where(self) -> dict[str, Any]:
        loc = current_user_line()
        return {"kernel": self.kernel_name, "pid": self.pid, "loc": loc, "file": loc.file if loc else None,
                "line": loc.line if loc else None}

    def assertion_failed(self, index: tuple[int, ...] | None, message: str) -> None:
        raise DeviceAssertionError(self.kernel_name, current_user_line(), self.pid, index, message)

    def function(self, fn: Callable) -> Callable:
        """`fn` as interpreted code runs it (see `pyenv`), made once per launch."""
        if fn not in self._functions:
            self._functions[fn] = interpreted(fn)
        return self._functions[fn]

    def call_builtin(self, name: str, args: tuple, kwargs: dict[str, Any]) -> Any:
        """A `kl.*` call from interpreted code, through the compiler's own handler table."""
        args_, kwargs_ = [plain(a) for a in args], {k: plain(v) for k, v in kwargs.items()}
        if name == "static_range":
            return range(*args_, **kwargs_)
        if name == "range":
            return kernel_range(*range_bounds(args_, kwargs_))
        return wrap(call_builtin(BuiltinCall(self.builder, None), name, args_, kwargs_))


@contextmanager
def recording_writes() -> Iterator[WriteLog]:
    """Interpreted launches inside the `with` record into the log it gives which store wrote
    each address."""
    log = WriteLog()
    token = WRITE_LOG.set(log)
    try:
        yield log
    finally:
        WRITE_LOG.reset(token)


def interpret(kernel: Any, bound: BoundLaunch, grid: tuple[int, int, int]) -> None:
    """Run `kernel`'s function over `grid` (x fastest) with the bound arguments."""
    src = kernel.source
    session = Session(src.name, grid)
    values = dict(bound.constants)
    for (name, ty), raw in zip(bound.runtime, bound.values):
        if isinstance(ty, PointerType):
            session.memory.register(name, bound.by_name[name], adapt_array(bound.by_name[name]))
        values[name] = InterpTensor(EvalValue.of(ty, raw))
    args, kwargs = _call_arguments(kernel.fn, values)
    token = ACTIVE.set(session)
    try:
        for z in range(grid[2]):
            for y in range(grid[1]):
                for x in range(grid[0]):
                    session.pid = (x, y, z)
                    _run_program(kernel, session.function(kernel.fn), args, kwargs)
    finally:
        ACTIVE.reset(token)


def _run_program(kernel: Any, fn: Callable, args: list[Any], kwargs: dict[str, Any]) -> None:
    """One program; what the kernel's Python raises (a NameError, a TypeError from a call with
    the wrong arguments) is a mistake in the kernel, reported as the compiler reports one: a
    CompilationError at the user's line."""
    try:
        result = fn(*args, **kwargs)
    except CompilationError as e:
        raise e.with_context(kernel.source.name, raising_user_line(e.__traceback__)) from None
    except KdslError:
        raise
    except Exception as e:
        raise CompilationError(f"{type(e).__name__}: {e}", raising_user_line(e.__traceback__),
                               kernel.source.name) from e
    if result is not None:
        raise CompilationError("a kernel cannot return a value; store results through a pointer argument",
                               kernel.source.loc(kernel.source.tree), kernel.source.name)


def _call_arguments(fn: Any, values: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """Positional arguments for the parameters that take them, keywords for keyword-only ones."""
    args, kwargs = [], {}
    for p in inspect.signature(fn).parameters.values():
        if p.kind == p.KEYWORD_ONLY:
            kwargs[p.name] = values[p.name]
        else:
            args.append(values[p.name])
    return args, kwargs
