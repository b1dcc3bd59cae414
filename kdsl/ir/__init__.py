"""kdsl IR: typed SSA values, operations with declared signatures, structured control flow."""
from kdsl.ir.builder import Builder
from kdsl.ir.core import BlockArg, Function, Module, Operation, OpResult, Region, Value, replace_uses
from kdsl.ir.parser import IRParseError, parse_module
from kdsl.ir.ops import OPS, VerificationError, has_trait, verify_op
from kdsl.ir.printer import print_function, print_module
from kdsl.ir.types import BlockType, PointerType, ScalarType, Type, block, parse_type
from kdsl.ir.verifier import verify_function, verify_module

__all__ = [
    "BlockArg", "BlockType", "Builder", "Function", "Module", "OPS", "OpResult", "Operation",
    "PointerType", "Region", "ScalarType", "Type", "Value", "VerificationError", "block",
    "IRParseError", "has_trait", "parse_module", "parse_type", "print_function", "print_module", "replace_uses",
    "verify_function", "verify_module", "verify_op",
]
