"""The run-time debugging builtins: `kl.device_print` and `kl.device_assert` (and `assert`).

Both take Triton's arguments. The `print` op carries the prefix in Triton's
normalised form (a leading space, a trailing ": " when there are values), so
every target prints the same lines (see `kdsl.runtime.device_print`).
"""
from __future__ import annotations

import string

from kdsl.errors import CompilationError
from kdsl.frontend import semantic as sem
from kdsl.ir.builder import Builder


def normalize_prefix(prefix: str, has_values: bool) -> str:
    """As Triton's `semantic.device_print`: "x" becomes " x: " when values follow."""
    if has_values and not prefix.endswith(" "):
        prefix += " "
    if has_values and not prefix.endswith(": "):
        prefix = prefix[:-1] + ": "
    if len(prefix) > 2 and not prefix.startswith(" "):
        prefix = " " + prefix
    return prefix


def _message(value: object, what: str, name: str) -> str:
    if not isinstance(value, str) or any(ch not in string.printable for ch in value):
        got = f"a runtime {value.type}" if isinstance(value, sem.Tensor) else repr(value)
        raise CompilationError(f"{what}'s {name} must be a string constant of printable ASCII characters, "
                               f"got {got}; pass runtime values as further arguments")
    return value


def device_print(b: Builder, prefix: object, *args: object, hex: object = False) -> None:
    prefix = _message(prefix, "kl.device_print", "prefix")
    if not isinstance(hex, bool):
        raise CompilationError(f"kl.device_print's hex must be a compile-time True or False, got {hex!r}")
    values = [sem.to_tensor(b, x) for x in args]
    b.create("print", [v.handle for v in values], [], {"prefix": normalize_prefix(prefix, bool(values)), "hex": hex})


def _condition(b: Builder, x: object, what: str) -> sem.Tensor:
    if not isinstance(x, (sem.Tensor, *sem.PyNumber)):
        raise CompilationError(f"kl.device_assert's {what} must be a boolean scalar or block, "
                               f"got {sem.type_name(x)}")
    return sem.to_bool(b, sem.to_tensor(b, x))


def device_assert(b: Builder, cond: object, msg: object = "", mask: object = None) -> None:
    """As Triton: where `mask` is given, only its true elements are checked."""
    message = _message(msg, "kl.device_assert", "message")
    checked = _condition(b, cond, "condition")
    if mask is not None:
        checked = sem.binary(b, "or", checked, sem.logical_not(b, _condition(b, mask, "mask")))
    b.create("assert", [checked.handle], [], {"message": message})
