"""Tensor-core instructions: ldmatrix, stmatrix, movmatrix, mma.sync (PTX ISA §9.7.14)."""
from __future__ import annotations

HANDLERS: dict = {}
