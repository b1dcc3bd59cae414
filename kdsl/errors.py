"""The exceptions kdsl raises for things a user wrote or passed.

Every user-facing error is a `KdslError`. Errors that concern a place in a
kernel's source carry a `Loc` and render the offending line with a caret under
the expression, the way Python's own tracebacks do.
"""
from __future__ import annotations

import linecache
from dataclasses import dataclass


@dataclass(frozen=True)
class Loc:
    """A place in user source: file, 1-based line, 0-based column span."""

    file: str
    line: int
    col: int = 0
    end_col: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def source_line(self) -> str | None:
        text = linecache.getline(self.file, self.line)
        return text.rstrip("\n") if text else None

    def excerpt(self) -> str:
        """The source line with carets under the span (to the end of the line when it has no end)."""
        text = self.source_line()
        if text is None:
            return ""
        end = self.end_col if self.end_col is not None and self.end_col > self.col else len(text.rstrip())
        end = min(max(end, self.col + 1), max(len(text), self.col + 1))
        return f"    {text}\n    {' ' * self.col}{'^' * (end - self.col)}"


UNKNOWN_LOC = Loc("<unknown>", 0)


class KdslError(Exception):
    """Base of every error kdsl raises because of what a user wrote or passed."""


class CompilationError(KdslError):
    """A kernel that cannot be compiled. The message names the kernel, quotes the offending line
    with carets under the expression and says what is wrong; `reason`, `loc` (a `Loc`) and
    `kernel` are attributes."""

    def __init__(self, reason: str, loc: Loc | None = None, kernel: str | None = None):
        self.reason = reason
        self.loc = loc
        self.kernel = kernel
        super().__init__(self._render())

    def _render(self) -> str:
        head = f"in kernel '{self.kernel}'" if self.kernel else "in a kernel"
        if self.loc is None or self.loc.line <= 0:
            return f"{head}: {self.reason}"
        excerpt = self.loc.excerpt()
        where = f"{head}, {self.loc.file}:{self.loc.line}:{self.loc.col}"
        return f"{where}:\n{excerpt}\n{self.reason}" if excerpt else f"{where}: {self.reason}"

    def with_context(self, kernel: str | None = None, loc: Loc | None = None) -> "CompilationError":
        """The same error with a kernel name or location filled in where missing."""
        return CompilationError(self.reason, self.loc or loc, self.kernel or kernel)


class LaunchError(KdslError):
    """A launch rejected before anything ran: wrong or missing arguments (a constexpr among them),
    a bad grid, arrays on mixed devices, an unknown or unavailable target, or a read-only array
    passed for an argument the kernel stores through."""


class DeviceAssertionError(KdslError):
    """A `kl.device_assert` (or `assert`) in a kernel that failed at run time.

    Raised after the launch, once the failing program has stopped (programs starting after it
    do nothing; programs already running on other threads, or SMs, may finish). Names the
    kernel, the assertion's line with a caret, the program id, the first failing element's
    index (None for a scalar condition) and the message, each also an attribute.
    """

    def __init__(self, kernel: str, loc: Loc | None, pid: tuple[int, int, int],
                 index: tuple[int, ...] | None, message: str):
        self.kernel, self.loc, self.pid, self.index, self.message = kernel, loc, pid, index, message
        where = f", {loc.file}:{loc.line}:{loc.col}" if loc is not None and loc.line > 0 else ""
        element = "" if index is None else f", element {index}"
        excerpt = loc.excerpt() if loc is not None else ""
        text = f"device assertion failed in kernel '{kernel}'{where}, program {pid}{element}"
        super().__init__(text + (f":\n{excerpt}" if excerpt else "") + (f"\n{message}" if message else ""))


class MemoryAccessError(KdslError):
    """An out-of-bounds or misaligned memory access detected at run time, by a checked `cpu`
    launch, the simulator (`sim`) or the interpreter, before the access touches memory.

    `details` holds what the detector knows (kernel, source line, program or
    thread ids, address or element offset); each is also an attribute.
    """

    def __init__(self, message: str, **details):
        self.details = details
        for key, value in details.items():
            setattr(self, key, value)
        super().__init__(message)
