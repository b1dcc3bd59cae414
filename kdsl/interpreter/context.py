"""The interpreter session active in this thread of control, if any.

Kept free of imports so that `kdsl.language` and `kdsl.runtime.kernel` can ask
"is a kernel being interpreted?" without pulling in the interpreter.
"""
from __future__ import annotations

from contextvars import ContextVar
from typing import Any

ACTIVE: ContextVar[Any] = ContextVar("kdsl_interpreter_session", default=None)


def active_session() -> Any:
    """The running `kdsl.interpreter.launch.Session`, or None outside an interpreted launch."""
    return ACTIVE.get()
