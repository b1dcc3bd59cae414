"""Kernel source lines in the PTX: LLVM debug locations, which NVPTX writes as `.file` and `.loc`
directives, with no DWARF sections (line tables only, what nvcc's `-lineinfo` gives). The
simulator reads them to name the line of a faulting instruction; cuda-gdb and
compute-sanitizer read them on a GPU. Ops from other files (device functions inlined from
elsewhere) are scoped in a `DILexicalBlockFile` of their file.
"""
from __future__ import annotations

import os

from llvmlite import ir

from kdsl.errors import Loc
from kdsl.ir.core import Function


class LineInfo:
    """The debug locations of one kernel's LLVM function."""

    def __init__(self, module: ir.Module, func: ir.Function, fn: Function):
        self.module = module
        self.files: dict[str, ir.DIValue] = {}
        self.scopes: dict[str, ir.DIValue] = {}
        self.locations: dict[tuple[str, int, int], ir.DIValue] = {}
        self.kernel_file = fn.loc.file
        unit = module.add_debug_info("DICompileUnit", {
            "language": ir.DIToken("DW_LANG_Python"), "file": self.file(fn.loc.file), "producer": "kdsl",
            "isOptimized": True, "runtimeVersion": 0, "emissionKind": ir.DIToken("DebugDirectivesOnly"),
        }, is_distinct=True)
        signature = module.add_debug_info("DISubroutineType", {"types": module.add_metadata([None])})
        self.subprogram = module.add_debug_info("DISubprogram", {
            "name": fn.name, "file": self.file(fn.loc.file), "line": max(fn.loc.line, 0), "type": signature,
            "unit": unit, "spFlags": ir.DIToken("DISPFlagDefinition | DISPFlagOptimized"),
        }, is_distinct=True)
        func.set_metadata("dbg", self.subprogram)
        module.add_named_metadata("llvm.dbg.cu", unit)
        flags = module.add_named_metadata("llvm.module.flags")
        flags.add(module.add_metadata([ir.Constant(ir.IntType(32), 2), "Debug Info Version",
                                       ir.Constant(ir.IntType(32), 3)]))

    def file(self, path: str) -> ir.DIValue:
        if path not in self.files:
            self.files[path] = self.module.add_debug_info("DIFile", {
                "filename": os.path.basename(path), "directory": os.path.dirname(path)})
        return self.files[path]

    def at(self, loc: Loc) -> ir.DIValue | None:
        """The debug location of `loc`, None where it names no line."""
        if loc.line <= 0:
            return None
        key = (loc.file, loc.line, loc.col)
        if key not in self.locations:
            self.locations[key] = self.module.add_debug_info("DILocation", {
                "line": loc.line, "column": loc.col + 1, "scope": self.scope(loc.file)})
        return self.locations[key]

    def scope(self, path: str) -> ir.DIValue:
        if path == self.kernel_file:
            return self.subprogram
        if path not in self.scopes:
            self.scopes[path] = self.module.add_debug_info("DILexicalBlockFile", {
                "scope": self.subprogram, "file": self.file(path), "discriminator": 0})
        return self.scopes[path]
