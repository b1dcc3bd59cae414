"""The lines `kl.device_print` writes, the same on every target (Triton's format).

One line per element of each value, values in turn, elements in row-major order:

    pid (1, 0, 0) idx ( 3) x: 5

The index is padded to the width of its dimension's largest index; a scalar has
`idx ()`; with several values, "(operand i) " follows the prefix. Integers print
in decimal (hexadecimal, zero-padded to the type's width, with `hex=True`),
floats as C's "%f" (hexadecimal floating point, C's "%a", with `hex=True`),
pointers as hexadecimal addresses.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from kdsl.interpreter.dtypes import from_bits
from kdsl.ir.types import PointerType, ScalarType, Type


def _float_hex(value: float) -> str:
    """C's "%a": Python's float.hex without the trailing zeros of the mantissa."""
    text = float(value).hex()
    if "p" not in text:
        return text
    mantissa, exponent = text.split("p")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}p{exponent}"


def format_value(value: object, elem: ScalarType | PointerType, hex: bool) -> str:
    if isinstance(elem, PointerType):
        return f"0x{int(value):x}"  # type: ignore[call-overload]
    if elem.is_float:
        return _float_hex(float(value)) if hex else "%f" % float(value)  # type: ignore[arg-type]
    number = int(value)  # type: ignore[call-overload]
    if hex:
        return f"0x{number & ((1 << elem.bits) - 1):0{max(1, elem.bits // 4)}x}"
    return str(number)


def print_lines(prefix: str, hex: bool, pid: tuple[int, int, int],
                values: list[tuple[Type, np.ndarray]]) -> Iterator[str]:
    """The lines of one `print` op run by program `pid`; `values` pairs each operand's type
    with its payload (see `kdsl.interpreter.dtypes`)."""
    head = f"pid ({pid[0]}, {pid[1]}, {pid[2]})"
    if not values:
        yield head + prefix
    for operand, (ty, data) in enumerate(values):
        label = prefix + (f"(operand {operand}) " if len(values) > 1 else "")
        widths = [len(str(d - 1)) for d in ty.shape]
        data = np.asarray(data).reshape(ty.shape)
        for index in np.ndindex(*ty.shape):
            coords = ", ".join(f"{i:>{w}}" for i, w in zip(index, widths))
            yield f"{head} idx ({coords}){label}{format_value(data[index], ty.scalar, hex)}"


def print_bits(prefix: str, hex: bool, pid: tuple[int, int, int], operands: list[tuple[Type, np.ndarray]]) -> None:
    """Write the lines of one `print` op through `sys.stdout`; `operands` pairs each operand's
    type with its elements' bit patterns in row-major order (any unsigned integer dtype)."""
    values = [(ty, from_bits(bits, ty.scalar)) for ty, bits in operands]
    print("\n".join(print_lines(prefix, hex, pid, values)))
