"""Errors the simulator raises besides `kdsl.errors.MemoryAccessError`."""
from __future__ import annotations

from kdsl.errors import KdslError


class PtxParseError(KdslError):
    """PTX text the parser cannot read; the message names the line."""


class UnsupportedInstruction(KdslError):
    """A PTX instruction (or form of one) the simulator does not implement."""
