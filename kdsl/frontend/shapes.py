"""The typing rules of the shape operations: reshape/view/ravel, trans/permute, join/split.

Every block is row-major, so `reshape` keeps the order of the elements and only
regroups them; `permute` moves dimensions; `join` adds a minor dimension of size
2 and `split` takes it apart. Errors are `CompilationError`s without a location,
as in `semantic`.
"""
from __future__ import annotations

from math import prod

from kdsl.frontend.semantic import Tensor, broadcast_all, check_shape, fail, to_tensor, type_name
from kdsl.ir import types as t
from kdsl.ir.builder import Builder
from kdsl.ir.types import BlockType


def _block(x: object, what: str) -> Tensor:
    if not isinstance(x, Tensor) or not x.shape:
        raise fail(f"kl.{what} needs a block, got {type_name(x)}")
    return x


def shape_arguments(shape: tuple) -> tuple:
    """`f(x, 4, 8)` and `f(x, (4, 8))` alike: a lone tuple or list holds the whole shape."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return shape


def format_order(order: tuple[int, ...]) -> str:
    """A permutation as the `order` attribute of `permute` holds it: "1,0"."""
    return ",".join(map(str, order))


def reshape(b: Builder, x: object, shape: tuple, can_reorder: object = False, what: str = "reshape") -> Tensor:
    """`x` with its elements, in row-major order, regrouped into `shape`."""
    x = _block(x, what)
    if not isinstance(can_reorder, bool):
        raise fail("can_reorder must be a compile-time True or False")
    shape = check_shape(shape_arguments(shape))
    if prod(shape) != prod(x.shape):
        raise fail(f"kl.{what} cannot turn a block of shape {x.shape} ({prod(x.shape)} elements) "
                   f"into shape {shape} ({prod(shape)} elements)")
    if shape == x.shape:
        return x
    return Tensor(b.value("reshape", [x.handle], BlockType(shape, x.dtype)))


def ravel(b: Builder, x: object, can_reorder: object = False) -> Tensor:
    x = _block(x, "ravel")
    return reshape(b, x, (prod(x.shape),), can_reorder, "ravel")


def permute(b: Builder, x: object, dims: tuple, what: str = "permute") -> Tensor:
    """`x` with dimension i of the result taken from dimension dims[i] of `x`."""
    x = _block(x, what)
    dims = shape_arguments(dims)
    rank = len(x.shape)
    if not dims and what == "trans":
        if rank != 2:
            raise fail(f"kl.trans without dims transposes 2D blocks; this one has shape {x.shape}: "
                       "give the permutation, e.g. kl.trans(x, 2, 1, 0)")
        dims = (1, 0)
    if not all(isinstance(d, int) and not isinstance(d, bool) for d in dims):
        raise fail(f"kl.{what} needs compile-time integer dims, got {dims!r}")
    order = tuple(d % rank if -rank <= d < rank else d for d in dims)
    if sorted(order) != list(range(rank)):
        raise fail(f"kl.{what}'s dims {tuple(dims)} are not a permutation of the {rank} dimensions "
                   f"of a block of shape {x.shape}")
    if order == tuple(range(rank)):
        return x
    shape = tuple(x.shape[d] for d in order)
    return Tensor(b.value("permute", [x.handle], BlockType(shape, x.dtype), order=format_order(order)))


def join(b: Builder, x: object, y: object) -> Tensor:
    """x and y (broadcast to one shape, of one type) side by side in a new minor dimension of size 2."""
    x, y = broadcast_all(b, to_tensor(b, x), to_tensor(b, y))
    if x.dtype != y.dtype:
        raise fail(f"kl.join needs values of one type, got {x.type} and {y.type}; convert one with .to()")
    return Tensor(b.value("join", [x.handle, y.handle], BlockType(check_shape((*x.shape, 2)), x.dtype)))


def split(b: Builder, x: object) -> tuple[Tensor, Tensor]:
    """The two halves of a block whose minor dimension has size 2 (scalars when its shape is (2,))."""
    x = _block(x, "split")
    if x.shape[-1] != 2:
        raise fail(f"kl.split needs a block whose last dimension is 2, got shape {x.shape}")
    result = t.block(x.shape[:-1], x.dtype)
    first, second = (Tensor(b.value("split", [x.handle], result, index=i)) for i in (0, 1))
    return first, second
