"""The op table: every kdsl IR operation, its signature, traits and checks.

One table serves the verifier, the printer/parser, the folder and the
backends. Semantics, for every target:

- Elementwise ops take operands of one type (blocks of one shape; the frontend
  inserts `splat`/`broadcast` first) and give a result of that shape.
- `div` on integers truncates toward zero and `rem` takes the sign of the
  dividend (C semantics); on floats `div` is IEEE division and `rem` is fmod.
  `shr` is arithmetic on signed and logical on unsigned integers.
- `min`/`max` on floats return the other operand when one is NaN (C's fmin/fmax).
- `cmp {pred}` compares with `pred` in eq ne lt le gt ge (ordered for floats,
  except `ne`, which is true on NaN), signedness from the type.
- `cast` converts numerically (float→int truncates toward zero; to fp8 rounds
  to nearest even, saturating finite overflow, see
  `kdsl.interpreter.dtypes.round_fp8`); `bitcast` reinterprets bits of an
  equal-width type. Arithmetic on bf16 and fp8 computes in f32 and rounds the
  result (fp8 `fma` rounds once).
- `constant {value}` gives a scalar, or a block with every element `value`.
- Float math (`exp log sqrt exp2 log2 rsqrt sin cos erf floor ceil`, `fma`) follows
  the C library; 16-bit floats are computed in f32 and rounded. `umulhi` is the
  high half of the double-width product, signed for signed types.
- `multiple_of x {values}` / `max_contiguous x {values}` ("16" or "16,1", one per
  dimension) are `x`, with the user's promise that along each dimension the first
  element of each run is a multiple of the value / the values come in contiguous
  runs of that length; the axis analysis takes them as facts.
- `reduce {axis, kind}` combines along `axis` with `kind` in sum max min,
  folding from the left in index order in the element type (float sums round
  after every addition; the frontend picks the type first, as Triton does).
- `load ptr [mask [other]]` / `store ptr value [mask]`: masked-off lanes read
  `other` (or an undefined value when there is none) and write nothing.
- `dot a, b, acc {input_precision}`: `acc + a @ b` for a: MxK, b: KxN (one
  element type) and acc: MxN of the result type, or batched: BxMxK, BxKxN
  and BxMxN, one product per batch index, products and sums in the
  result type (the order of the sums is the target's: the CPU goes over k
  in increasing order); `input_precision` records what the
  user asked for fp32 operands (GPU only: the CPU computes exact fp32).
- `reshape` regroups a block's elements, in row-major order, into another shape
  of the same element count; `permute {order}` gives a block whose dimension i
  is the operand's dimension order[i] (`order` is written "2,0,1");
  `join a, b` stacks two blocks of one type along a new minor dimension of size
  2; `split {index}` takes element `index` (0 or 1) of the size-2 minor
  dimension (a scalar when the operand's shape is (2,)).
- `atomic_rmw ptr, val [mask] {kind, sem, scope}` and `atomic_cas ptr, cmp, val
  {sem, scope}`: per element, in lane order, atomically read the old value,
  write `op(old, val)` (kind in add max min and or xor xchg; integers wrap;
  float max/min compare bit patterns as Triton does: signed max, or unsigned
  min when `val` has its sign bit set, and the reverse for min) or, for cas,
  `val` where old == cmp; the result is the old values. Lanes with the same
  address all take effect. Masked-off lanes touch no memory and give an
  undefined value. `sem` in acquire release acq_rel relaxed orders the access
  (the CPU maps it to LLVM's orderings); `scope` in gpu cta sys is for GPUs.
  Not pure: DCE and CSE keep them.
- `reduce_with {axis}` and `scan {axis, reverse}` take k blocks of one shape
  and own one region with 2k scalar arguments (k accumulated values, then k new
  ones, of the operands' element types) that yields the k combined values.
  `reduce_with` folds from the left along `axis` in index order
  (acc = x[0]; acc = region(acc, x[i]) for i = 1..n-1) and gives k results
  without that axis; `scan` gives k results of the operands' shapes holding the
  inclusive running values (with `reverse`, the fold runs from the last index
  down). kl.argmax/argmin are `reduce_with` over (value, index) pairs and
  cumsum/cumprod `scan` with add/mul (see `kdsl.frontend.combine`): NaN never
  wins an argmax/argmin (any number beats it; all NaN gives index 0) and ties
  go to the lowest index (the highest with tie_break_left=False).
- `print values... {prefix, hex}` writes, for each operand in turn and each of
  its elements in row-major order, the line "pid (x, y, z) idx (i, j)" +
  prefix + value (Triton's device_print format, see
  `kdsl.runtime.device_print`); `assert cond {message}` stops the program
  at its first false element and reports it (`kdsl.DeviceAssertionError`).
  Neither is pure: DCE and CSE keep them.
- `for lb, ub, step, inits...` runs its region with (iv, iter args...) while
  iv < ub; `if cond` runs one of two regions; both yield their results.
- `while inits...` runs its first region on the carried values; it ends with
  `condition %c, values...`: while %c holds, the second region runs on those
  values and yields the next ones; otherwise the values are the results.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from kdsl.errors import KdslError
from kdsl.ir.core import Operation
from kdsl.ir.types import BlockType, PointerType, ScalarType, Type, i1, i32


class VerificationError(KdslError):
    """IR that breaks an operation's rules: a compiler bug, reported at the user's line."""

    def __init__(self, message: str, op: Operation | None = None):
        self.op = op
        where = f" at {op.loc}" if op is not None else ""
        excerpt = op.loc.excerpt() if op is not None else ""
        super().__init__(f"invalid IR{where}: {message}" + (f"\n{excerpt}" if excerpt else ""))


Verifier = Callable[[Operation], None]


@dataclass(frozen=True)
class OpDef:
    """An operation's declared signature.

    `operands` is (min, max) with max None for variadic; `results` is a count or
    None for variadic; `attrs` maps each required attribute to its Python type.
    """

    name: str
    operands: tuple[int, int | None]
    results: int | None
    attrs: dict[str, type | tuple[type, ...]] = field(default_factory=dict)
    regions: int = 0
    traits: frozenset[str] = frozenset()
    check: Verifier | None = None


PURE = "pure"
ELEMENTWISE = "elementwise"
COMMUTATIVE = "commutative"
TERMINATOR = "terminator"

CMP_PREDICATES = ("eq", "ne", "lt", "le", "gt", "ge")
REDUCE_KINDS = ("sum", "max", "min")
HINTS = ("multiple_of", "max_contiguous")
FLOAT_UNARY = ("exp", "log", "sqrt", "exp2", "log2", "rsqrt", "sin", "cos", "erf", "floor", "ceil")


def _fail(op: Operation, message: str) -> None:
    raise VerificationError(f"'{op.name}': {message}", op)


def _same_type_operands_and_result(op: Operation) -> None:
    t = op.results[0].type
    for v in op.operands:
        if v.type != t:
            _fail(op, f"operand of type {v.type} does not match result type {t}")


def _numeric(op: Operation, kinds: tuple[str, ...]) -> None:
    _same_type_operands_and_result(op)
    elem = op.results[0].type.scalar
    if not isinstance(elem, ScalarType) or elem.kind not in kinds:
        _fail(op, f"element type {elem} is not {' or '.join(kinds)}")


def _arith(op: Operation) -> None:
    _numeric(op, ("int", "uint", "float"))


def _integer(op: Operation) -> None:
    _numeric(op, ("int", "uint"))


def _float(op: Operation) -> None:
    _numeric(op, ("float",))


def hint_values(op: Operation) -> tuple[int, ...]:
    """A hint's promise per dimension (scalars have one)."""
    return tuple(int(v) for v in op.attrs["values"].split(","))


def _hint(op: Operation) -> None:
    _integer(op)
    rank = max(len(op.results[0].type.shape), 1)
    try:
        values = hint_values(op)
    except ValueError:
        values = ()
    if len(values) != rank or min(values) < 1:
        _fail(op, f"values must be {rank} positive integers, not {op.attrs['values']!r}")


def _cmp(op: Operation) -> None:
    a, b = op.operands
    if a.type != b.type:
        _fail(op, f"operands have types {a.type} and {b.type}")
    if op.attrs["pred"] not in CMP_PREDICATES:
        _fail(op, f"unknown predicate {op.attrs['pred']!r}")
    if op.results[0].type != a.type.with_scalar(i1):
        _fail(op, f"result must be {a.type.with_scalar(i1)}")


def _select(op: Operation) -> None:
    c, a, b = op.operands
    t = op.results[0].type
    if a.type != t or b.type != t:
        _fail(op, f"value operands {a.type}, {b.type} must match result {t}")
    if c.type != t.with_scalar(i1):
        _fail(op, f"condition must be {t.with_scalar(i1)}, not {c.type}")


def _same_shape_other_elem(op: Operation) -> None:
    (x,) = op.operands
    if x.type.shape != op.results[0].type.shape:
        _fail(op, f"shape changes from {x.type} to {op.results[0].type}")


def _bitcast(op: Operation) -> None:
    _same_shape_other_elem(op)
    src, dst = op.operands[0].type.scalar, op.results[0].type.scalar
    if not (isinstance(src, ScalarType) and isinstance(dst, ScalarType) and src.bits == dst.bits):
        _fail(op, f"bitcast between types of different widths: {src} and {dst}")


def _constant(op: Operation) -> None:
    elem = op.results[0].type.scalar
    value = op.attrs["value"]
    if not isinstance(elem, ScalarType):
        _fail(op, "constants must be numeric")
    if elem.is_int and not isinstance(value, (bool, int)):
        _fail(op, f"integer constant with value {value!r}")


def _i32_result(op: Operation) -> None:
    if op.results[0].type != i32:
        _fail(op, "result must be i32")
    if op.attrs["axis"] not in (0, 1, 2):
        _fail(op, "axis must be 0, 1 or 2")


def _arange(op: Operation) -> None:
    start, end = op.attrs["start"], op.attrs["end"]
    if op.results[0].type != BlockType((end - start,), i32):
        _fail(op, f"result must be block<{end - start}xi32>")


def _splat(op: Operation) -> None:
    (x,) = op.operands
    t = op.results[0].type
    if x.type.is_block or not t.is_block or t.scalar != x.type:
        _fail(op, f"cannot splat {x.type} to {t}")


def _broadcast(op: Operation) -> None:
    (x,) = op.operands
    t = op.results[0].type
    src = x.type
    if not (src.is_block and t.is_block and src.scalar == t.scalar and len(src.shape) == len(t.shape)):
        _fail(op, f"cannot broadcast {src} to {t}")
    for s, d in zip(src.shape, t.shape):
        if s != d and s != 1:
            _fail(op, f"cannot broadcast {src} to {t}")


def _expand_dims(op: Operation) -> None:
    (x,) = op.operands
    axis = op.attrs["axis"]
    shape = list(x.type.shape)
    if not 0 <= axis <= len(shape):
        _fail(op, f"axis {axis} out of range for {x.type}")
    shape.insert(axis, 1)
    if op.results[0].type != BlockType(tuple(shape), x.type.scalar):
        _fail(op, f"result must have shape {tuple(shape)}")


def _addptr(op: Operation) -> None:
    p, off = op.operands
    if not isinstance(p.type.scalar, PointerType):
        _fail(op, f"first operand must be a pointer, not {p.type}")
    if not (isinstance(off.type.scalar, ScalarType) and off.type.scalar.is_int):
        _fail(op, f"offset must be an integer, not {off.type}")
    if p.type.shape != off.type.shape or op.results[0].type != p.type:
        _fail(op, "pointer, offset and result must have one shape")


def _load(op: Operation) -> None:
    ptr = op.operands[0].type
    if not isinstance(ptr.scalar, PointerType):
        _fail(op, f"loads need pointers, not {ptr}")
    value_type = ptr.with_scalar(ptr.scalar.elem)
    if op.results[0].type != value_type:
        _fail(op, f"result must be {value_type}")
    if len(op.operands) > 1 and op.operands[1].type != ptr.with_scalar(i1):
        _fail(op, f"mask must be {ptr.with_scalar(i1)}")
    if len(op.operands) > 2 and op.operands[2].type != value_type:
        _fail(op, f"other must be {value_type}")


def _store(op: Operation) -> None:
    ptr = op.operands[0].type
    if not isinstance(ptr.scalar, PointerType):
        _fail(op, f"stores need pointers, not {ptr}")
    if op.operands[1].type != ptr.with_scalar(ptr.scalar.elem):
        _fail(op, f"value must be {ptr.with_scalar(ptr.scalar.elem)}, not {op.operands[1].type}")
    if len(op.operands) > 2 and op.operands[2].type != ptr.with_scalar(i1):
        _fail(op, f"mask must be {ptr.with_scalar(i1)}")


def _reduce(op: Operation) -> None:
    (x,) = op.operands
    axis, kind = op.attrs["axis"], op.attrs["kind"]
    if kind not in REDUCE_KINDS:
        _fail(op, f"unknown reduction {kind!r}")
    if not x.type.is_block or not 0 <= axis < len(x.type.shape):
        _fail(op, f"axis {axis} out of range for {x.type}")
    shape = x.type.shape[:axis] + x.type.shape[axis + 1:]
    expected: Type = BlockType(shape, x.type.scalar) if shape else x.type.scalar
    if op.results[0].type != expected:
        _fail(op, f"result must be {expected}")


DOT_OPERANDS = ("fp8e4nv", "fp8e5", "f16", "bf16", "f32", "f64", "i8")


def _dot(op: Operation) -> None:
    a, b, acc = (v.type for v in op.operands)
    if not all(isinstance(x, BlockType) and len(x.shape) == len(a.shape) in (2, 3) for x in (a, b, acc)):
        _fail(op, f"operands must be 2D or 3D blocks of one rank, got {a}, {b}, {acc}")
    if a.scalar != b.scalar or str(a.scalar) not in DOT_OPERANDS:
        _fail(op, f"operands must share a type among {', '.join(DOT_OPERANDS)}, got {a.scalar} and {b.scalar}")
    *batch, m, k = a.shape
    if b.shape != (*batch, k, b.shape[-1]) or acc.shape != (*batch, m, b.shape[-1]):
        _fail(op, f"shapes {a.shape} x {b.shape} + {acc.shape} do not chain")
    if op.results[0].type != acc:
        _fail(op, f"result must be {acc}")


def _print(op: Operation) -> None:
    if not all(isinstance(v.type.scalar, (ScalarType, PointerType)) for v in op.operands):
        _fail(op, "prints scalars, pointers and blocks of them")


def _assert(op: Operation) -> None:
    (cond,) = op.operands
    if cond.type.scalar != i1:
        _fail(op, f"condition must be i1 or a block of i1, not {cond.type}")


def _reshape(op: Operation) -> None:
    (x,) = op.operands
    t = op.results[0].type
    if not (x.type.is_block and t.is_block and x.type.scalar == t.scalar and x.type.numel == t.numel):
        _fail(op, f"cannot reshape {x.type} to {t}")


def permute_order(attrs: dict) -> tuple[int, ...]:
    """The permutation of a `permute` op, from its attribute "2,0,1"."""
    return tuple(int(d) for d in attrs["order"].split(","))


def _permute(op: Operation) -> None:
    (x,) = op.operands
    order = permute_order(op.attrs)
    if not x.type.is_block or sorted(order) != list(range(len(x.type.shape))):
        _fail(op, f"order {op.attrs['order']!r} is not a permutation of the dimensions of {x.type}")
    expected = BlockType(tuple(x.type.shape[d] for d in order), x.type.scalar)
    if op.results[0].type != expected:
        _fail(op, f"result must be {expected}")


def _join(op: Operation) -> None:
    a, b = op.operands
    expected = BlockType((*a.type.shape, 2), a.type.scalar)
    if a.type != b.type or op.results[0].type != expected:
        _fail(op, f"joins two values of one type into {expected}")


def _split(op: Operation) -> None:
    (x,) = op.operands
    if not x.type.is_block or x.type.shape[-1] != 2 or op.attrs["index"] not in (0, 1):
        _fail(op, f"splits a block whose last dimension is 2 at index 0 or 1, not {x.type}")
    shape = x.type.shape[:-1]
    expected: Type = BlockType(shape, x.type.scalar) if shape else x.type.scalar
    if op.results[0].type != expected:
        _fail(op, f"result must be {expected}")


ATOMIC_KINDS = ("add", "max", "min", "and", "or", "xor", "xchg")
ATOMIC_SEMS = ("acquire", "release", "acq_rel", "relaxed")
ATOMIC_SCOPES = ("gpu", "cta", "sys")


def _atomic(op: Operation, values: int) -> None:
    """`ptr`, then `values` operands of the pointee type, then an optional mask; result the pointee type."""
    ptr = op.operands[0].type
    if not isinstance(ptr.scalar, PointerType):
        _fail(op, f"atomics need pointers, not {ptr}")
    value_type = ptr.with_scalar(ptr.scalar.elem)
    if any(v.type != value_type for v in op.operands[1:1 + values]) or op.results[0].type != value_type:
        _fail(op, f"values and result must be {value_type}")
    if len(op.operands) > 1 + values and op.operands[1 + values].type != ptr.with_scalar(i1):
        _fail(op, f"mask must be {ptr.with_scalar(i1)}")
    if op.attrs["sem"] not in ATOMIC_SEMS or op.attrs["scope"] not in ATOMIC_SCOPES:
        _fail(op, f"unknown sem {op.attrs['sem']!r} or scope {op.attrs['scope']!r}")
    if op.name == "atomic_rmw" and op.attrs["kind"] not in ATOMIC_KINDS:
        _fail(op, f"unknown atomic kind {op.attrs['kind']!r}")


def _combining(op: Operation) -> None:
    """`reduce_with` and `scan`: k operands of one shape, 2k scalar region args, k yields."""
    shape = op.operands[0].type.shape if op.operands else ()
    elems = [v.type.scalar for v in op.operands]
    axis = op.attrs["axis"]
    if not op.operands or not all(v.type.is_block and v.type.shape == shape for v in op.operands) \
            or not 0 <= axis < len(shape):
        _fail(op, f"needs blocks of one shape and an axis within them, got {[str(v.type) for v in op.operands]}")
    if [a.type for a in op.regions[0].args] != elems + elems:
        _fail(op, "region arguments must be two sets of the operands' element types")
    _region_yields(op, 0, elems)  # type: ignore[arg-type]
    out = shape if op.name == "scan" else shape[:axis] + shape[axis + 1:]
    expected = [BlockType(out, e) if out else e for e in elems]
    if [r.type for r in op.results] != expected:
        _fail(op, f"results must be {[str(e) for e in expected]}")


def _region_yields(op: Operation, region_index: int, types: list[Type]) -> None:
    region = op.regions[region_index]
    term = region.terminator
    if term is None or term.name != "yield":
        _fail(op, "region must end with yield")
    got = [v.type for v in term.operands]
    if got != types:
        _fail(op, f"region yields {got}, expected {types}")


def _for(op: Operation) -> None:
    lb, ub, step, *inits = op.operands
    iv_type = lb.type
    if not (isinstance(iv_type, ScalarType) and iv_type.is_int) or ub.type != iv_type or step.type != iv_type:
        _fail(op, "bounds and step must be integer scalars of one type")
    types = [v.type for v in inits]
    if [r.type for r in op.results] != types:
        _fail(op, "results must match the initial values")
    body = op.regions[0]
    if [a.type for a in body.args] != [iv_type, *types]:
        _fail(op, "region arguments must be the induction variable and the carried values")
    _region_yields(op, 0, types)


def _if(op: Operation) -> None:
    (cond,) = op.operands
    if cond.type != i1:
        _fail(op, f"condition must be i1, not {cond.type}")
    types = [r.type for r in op.results]
    for i in range(2):
        if op.regions[i].args:
            _fail(op, "if regions take no arguments")
        _region_yields(op, i, types)


def _while(op: Operation) -> None:
    types = [v.type for v in op.operands]
    if [r.type for r in op.results] != types:
        _fail(op, "results must match the initial values")
    before, after = op.regions
    for region in (before, after):
        if [a.type for a in region.args] != types:
            _fail(op, "both regions take the carried values as arguments")
    term = before.terminator
    if term is None or term.name != "condition":
        _fail(op, "the first region must end with condition")
    if [v.type for v in term.operands] != [i1, *types]:
        _fail(op, "condition takes an i1 and the carried values")
    _region_yields(op, 1, types)


def _terminator(op: Operation) -> None:
    region = op.parent
    if region is not None and region.terminator is not op:
        _fail(op, "must be the last operation of its region")


def _defs() -> dict[str, OpDef]:
    pure = frozenset({PURE})
    elementwise = frozenset({PURE, ELEMENTWISE})
    commutative = frozenset({PURE, ELEMENTWISE, COMMUTATIVE})
    number = (bool, int, float)
    defs = [
        OpDef("constant", (0, 0), 1, {"value": number}, traits=pure, check=_constant),
        OpDef("program_id", (0, 0), 1, {"axis": int}, traits=pure, check=_i32_result),
        OpDef("num_programs", (0, 0), 1, {"axis": int}, traits=pure, check=_i32_result),
        OpDef("arange", (0, 0), 1, {"start": int, "end": int}, traits=pure, check=_arange),
        OpDef("splat", (1, 1), 1, traits=pure, check=_splat),
        OpDef("broadcast", (1, 1), 1, traits=pure, check=_broadcast),
        OpDef("expand_dims", (1, 1), 1, {"axis": int}, traits=pure, check=_expand_dims),
        OpDef("cmp", (2, 2), 1, {"pred": str}, traits=elementwise, check=_cmp),
        OpDef("select", (3, 3), 1, traits=elementwise, check=_select),
        OpDef("cast", (1, 1), 1, traits=elementwise, check=_same_shape_other_elem),
        OpDef("bitcast", (1, 1), 1, traits=elementwise, check=_bitcast),
        OpDef("addptr", (2, 2), 1, traits=elementwise, check=_addptr),
        OpDef("load", (1, 3), 1, check=_load),
        OpDef("store", (2, 3), 0, check=_store),
        OpDef("reduce", (1, 1), 1, {"axis": int, "kind": str}, traits=pure, check=_reduce),
        OpDef("for", (3, None), None, regions=1, check=_for),
        OpDef("if", (1, 1), None, regions=2, check=_if),
        OpDef("while", (0, None), None, regions=2, check=_while),
        OpDef("condition", (1, None), 0, traits=frozenset({TERMINATOR}), check=_terminator),
        OpDef("yield", (0, None), 0, traits=frozenset({TERMINATOR}), check=_terminator),
        OpDef("return", (0, None), 0, traits=frozenset({TERMINATOR}), check=_terminator),
        OpDef("call", (0, None), None, {"callee": str}),
        OpDef("dot", (3, 3), 1, {"input_precision": str}, traits=pure, check=_dot),
        OpDef("atomic_rmw", (2, 3), 1, {"kind": str, "sem": str, "scope": str}, check=lambda op: _atomic(op, 1)),
        OpDef("atomic_cas", (3, 3), 1, {"sem": str, "scope": str}, check=lambda op: _atomic(op, 2)),
        OpDef("print", (0, None), 0, {"prefix": str, "hex": bool}, check=_print),
        OpDef("assert", (1, 1), 0, {"message": str}, check=_assert),
    ]
    for name in ("add", "mul", "min", "max"):
        defs.append(OpDef(name, (2, 2), 1, traits=commutative, check=_arith))
    for name in ("sub", "div", "rem"):
        defs.append(OpDef(name, (2, 2), 1, traits=elementwise, check=_arith))
    for name in ("and", "or", "xor"):
        defs.append(OpDef(name, (2, 2), 1, traits=commutative, check=_integer))
    for name in ("shl", "shr"):
        defs.append(OpDef(name, (2, 2), 1, traits=elementwise, check=_integer))
    defs.append(OpDef("neg", (1, 1), 1, traits=elementwise, check=_arith))
    defs.append(OpDef("abs", (1, 1), 1, traits=elementwise, check=_arith))
    defs.append(OpDef("not", (1, 1), 1, traits=elementwise, check=_integer))
    for name in FLOAT_UNARY:
        defs.append(OpDef(name, (1, 1), 1, traits=elementwise, check=_float))
    defs.append(OpDef("fma", (3, 3), 1, traits=elementwise, check=_float))
    defs.append(OpDef("umulhi", (2, 2), 1, traits=commutative, check=_integer))
    for name in HINTS:
        defs.append(OpDef(name, (1, 1), 1, {"values": str}, traits=elementwise, check=_hint))
    defs += [
        OpDef("reshape", (1, 1), 1, traits=pure, check=_reshape),
        OpDef("permute", (1, 1), 1, {"order": str}, traits=pure, check=_permute),
        OpDef("join", (2, 2), 1, traits=pure, check=_join),
        OpDef("split", (1, 1), 1, {"index": int}, traits=pure, check=_split),
        OpDef("reduce_with", (1, None), None, {"axis": int}, regions=1, traits=pure, check=_combining),
        OpDef("scan", (1, None), None, {"axis": int, "reverse": bool}, regions=1, traits=pure, check=_combining),
    ]
    return {d.name: d for d in defs}


OPS: dict[str, OpDef] = _defs()


def has_trait(op: Operation, trait: str) -> bool:
    return trait in OPS[op.name].traits


def verify_op(op: Operation) -> None:
    """Check one operation against its declared signature and its own rules."""
    d = OPS.get(op.name)
    if d is None:
        raise VerificationError(f"unknown operation '{op.name}'", op)
    lo, hi = d.operands
    if len(op.operands) < lo or (hi is not None and len(op.operands) > hi):
        _fail(op, f"takes {lo}{'' if hi == lo else '+' if hi is None else f'-{hi}'} operands, got {len(op.operands)}")
    if d.results is not None and len(op.results) != d.results:
        _fail(op, f"has {d.results} results, got {len(op.results)}")
    if len(op.regions) != d.regions:
        _fail(op, f"has {d.regions} regions, got {len(op.regions)}")
    for key, kind in d.attrs.items():
        if key not in op.attrs or not isinstance(op.attrs[key], kind):
            _fail(op, f"needs attribute '{key}'")
    if d.check is not None:
        d.check(op)
