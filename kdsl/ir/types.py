"""The types of kdsl IR values: scalars, pointers and blocks.

Types are immutable and compared by value. Their textual form is what the
printer writes and the parser reads: `i32`, `f16`, `*f32`, `block<64x128xf32>`,
`block<128x*f16>`.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod


class Type:
    """Base of every IR type."""

    @property
    def scalar(self) -> "ScalarType | PointerType":
        """The element type: the type itself for scalars and pointers."""
        return self  # type: ignore[return-value]

    @property
    def shape(self) -> tuple[int, ...]:
        return ()

    @property
    def is_block(self) -> bool:
        return False

    def with_scalar(self, elem: "ScalarType | PointerType") -> "Type":
        """This type's shape with another element type."""
        return elem


@dataclass(frozen=True)
class ScalarType(Type):
    """A numeric scalar: `kind` is 'int', 'uint' or 'float' (`i1` is an int of 1 bit)."""

    name: str
    kind: str
    bits: int

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return self.name

    @property
    def is_int(self) -> bool:
        return self.kind in ("int", "uint")

    @property
    def is_float(self) -> bool:
        return self.kind == "float"

    @property
    def is_signed(self) -> bool:
        return self.kind == "int" and self.bits > 1

    @property
    def is_bool(self) -> bool:
        return self.kind == "int" and self.bits == 1

    @property
    def is_fp8(self) -> bool:
        return self.is_float and self.bits == 8

    @property
    def bytes(self) -> int:
        return max(1, self.bits // 8)


@dataclass(frozen=True)
class PointerType(Type):
    """A pointer to global memory holding elements of `elem`."""

    elem: ScalarType

    def __str__(self) -> str:
        return f"*{self.elem}"

    @property
    def element_ty(self) -> ScalarType:
        """Triton's name for the element type, as in `out_ptr.dtype.element_ty`."""
        return self.elem

    def __repr__(self) -> str:
        return str(self)


@dataclass(frozen=True)
class BlockType(Type):
    """A fixed-shape block of scalars or pointers; every dimension a power of two."""

    dims: tuple[int, ...]
    elem: ScalarType | PointerType

    def __str__(self) -> str:
        return f"block<{'x'.join(map(str, self.dims))}x{self.elem}>"

    def __repr__(self) -> str:
        return str(self)

    @property
    def scalar(self) -> ScalarType | PointerType:
        return self.elem

    @property
    def shape(self) -> tuple[int, ...]:
        return self.dims

    @property
    def is_block(self) -> bool:
        return True

    @property
    def numel(self) -> int:
        return prod(self.dims)

    def with_scalar(self, elem: ScalarType | PointerType) -> "BlockType":
        return BlockType(self.dims, elem)


i1 = ScalarType("i1", "int", 1)
i8 = ScalarType("i8", "int", 8)
i16 = ScalarType("i16", "int", 16)
i32 = ScalarType("i32", "int", 32)
i64 = ScalarType("i64", "int", 64)
u8 = ScalarType("u8", "uint", 8)
u16 = ScalarType("u16", "uint", 16)
u32 = ScalarType("u32", "uint", 32)
u64 = ScalarType("u64", "uint", 64)
f16 = ScalarType("f16", "float", 16)
bf16 = ScalarType("bf16", "float", 16)
f32 = ScalarType("f32", "float", 32)
f64 = ScalarType("f64", "float", 64)
fp8e4nv = ScalarType("fp8e4nv", "float", 8)
fp8e5 = ScalarType("fp8e5", "float", 8)

SCALARS: dict[str, ScalarType] = {
    t.name: t for t in (i1, i8, i16, i32, i64, u8, u16, u32, u64, f16, bf16, f32, f64, fp8e4nv, fp8e5)
}


def block(shape: tuple[int, ...], elem: ScalarType | PointerType) -> Type:
    """The type of a value of `shape` (a scalar type when the shape is empty)."""
    return BlockType(tuple(shape), elem) if shape else elem


def parse_type(text: str) -> Type:
    """Read a type from its textual form; raises ValueError on malformed text."""
    text = text.strip()
    if text.startswith("*"):
        elem = SCALARS.get(text[1:])
        if elem is None:
            raise ValueError(f"unknown pointer element type in {text!r}")
        return PointerType(elem)
    if text.startswith("block<") and text.endswith(">"):
        parts = text[len("block<"):-1].split("x")
        try:
            dims = tuple(int(p) for p in parts[:-1])
        except ValueError:
            raise ValueError(f"malformed block type {text!r}") from None
        elem = parse_type(parts[-1])
        if not dims or isinstance(elem, BlockType):
            raise ValueError(f"malformed block type {text!r}")
        return BlockType(dims, elem)  # type: ignore[arg-type]
    if text in SCALARS:
        return SCALARS[text]
    raise ValueError(f"unknown type {text!r}")
