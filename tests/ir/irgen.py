"""Hypothesis strategies for random well-typed kdsl IR modules, built with the Builder.

A module has up to two device functions (each may call the ones before it)
and a kernel that loads, computes, stores and calls. Regions see the values of
the regions around them and their own arguments; values defined inside a
region stay there. Every op gets a random source location.
"""
from __future__ import annotations

from hypothesis import strategies as st

from kdsl.errors import Loc
from kdsl.ir import Builder, Function, Module, Region, Value
from kdsl.ir.ops import CMP_PREDICATES
from kdsl.ir.types import (BlockType, PointerType, ScalarType, Type, block, bf16, f16, f32, f64, i1, i8, i32,
                           i64, u8, u32, u64)

ELEMS = [i1, i8, i32, i64, u8, u32, u64, f16, bf16, f32, f64]
NUMERIC = [t for t in ELEMS if not t.is_bool]
SPECIAL_FLOATS = [0.0, -0.0, 1.0, -1.5, float("inf"), float("-inf"), float("nan"), 1e300, 5e-324, 65504.0]
INT_OPS = ["add", "sub", "mul", "div", "rem", "min", "max", "and", "or", "xor", "shl", "shr"]
FLOAT_OPS = ["add", "sub", "mul", "div", "rem", "min", "max"]
FLOAT_UNARY = ["neg", "abs", "exp", "log", "sqrt"]

shapes = st.one_of(st.just(()), st.lists(st.sampled_from([1, 2, 4, 8, 16]), min_size=1, max_size=3).map(tuple))
locs = st.builds(Loc, st.sampled_from(["k.py", "lib/dev.py", "a b\"q.py"]), st.integers(1, 500),
                 st.integers(0, 80), st.one_of(st.none(), st.integers(81, 120)))


def constant_values(t: ScalarType) -> st.SearchStrategy:
    if t.is_bool:
        return st.booleans()
    if t.is_int:
        lo, hi = (-(1 << (t.bits - 1)), (1 << (t.bits - 1)) - 1) if t.is_signed else (0, (1 << t.bits) - 1)
        small = st.integers(max(lo, -9), min(hi, 9))
        return st.one_of(st.integers(lo, hi), small, st.sampled_from([lo, hi, 0, -1 if t.is_signed else hi]))
    return st.one_of(st.floats(width=min(t.bits, 64) if t.bits in (16, 32, 64) else 32),
                     st.sampled_from(SPECIAL_FLOATS))


class IRGen:
    """Draws ops into regions; `pool` holds the values visible at the insertion point."""

    def __init__(self, draw, module: Module):
        self.draw = draw
        self.module = module

    def value_of(self, b: Builder, pool: list[Value], t: Type) -> Value:
        """A visible value of type `t`, or a new constant of it."""
        found = [v for v in pool if v.type == t]
        if found and self.draw(st.booleans()):
            return self.draw(st.sampled_from(found))
        return self.new_const(b, pool, t)

    def new_const(self, b: Builder, pool: list[Value], t: Type) -> Value:
        v = b.value("constant", [], t, value=self.draw(constant_values(t.scalar)))
        pool.append(v)
        return v

    def numeric_type(self, elems: list[ScalarType] = NUMERIC) -> Type:
        return block(self.draw(shapes), self.draw(st.sampled_from(elems)))

    def region(self, b: Builder, pool: list[Value], depth: int, n_ops: int) -> None:
        for _ in range(n_ops):
            with b.located(self.draw(locs)):
                self.op(b, pool, depth)

    def op(self, b: Builder, pool: list[Value], depth: int) -> None:
        kinds = ["const", "binary", "unary", "cmp", "select", "cast", "splat", "broadcast", "reduce", "memory"]
        if depth > 0:
            kinds += ["for", "if"]
        if self.callees():
            kinds.append("call")
        getattr(self, "gen_" + self.draw(st.sampled_from(kinds)))(b, pool, depth)

    def callees(self) -> list[Function]:
        return [fn for fn in self.module.functions.values() if not fn.is_kernel]

    def emit(self, b: Builder, pool: list[Value], name: str, operands: list[Value], t: Type, **attrs) -> Value:
        v = b.value(name, operands, t, **attrs)
        pool.append(v)
        return v

    def gen_const(self, b: Builder, pool: list[Value], depth: int) -> None:
        self.new_const(b, pool, self.numeric_type(ELEMS))

    def gen_binary(self, b: Builder, pool: list[Value], depth: int) -> None:
        t = self.numeric_type()
        name = self.draw(st.sampled_from(INT_OPS if t.scalar.is_int else FLOAT_OPS))
        self.emit(b, pool, name, [self.value_of(b, pool, t), self.value_of(b, pool, t)], t)

    def gen_unary(self, b: Builder, pool: list[Value], depth: int) -> None:
        t = self.numeric_type()
        name = self.draw(st.sampled_from(["neg", "abs", "not"] if t.scalar.is_int else FLOAT_UNARY))
        self.emit(b, pool, name, [self.value_of(b, pool, t)], t)

    def gen_cmp(self, b: Builder, pool: list[Value], depth: int) -> None:
        t = self.numeric_type()
        operands = [self.value_of(b, pool, t), self.value_of(b, pool, t)]
        self.emit(b, pool, "cmp", operands, t.with_scalar(i1), pred=self.draw(st.sampled_from(CMP_PREDICATES)))

    def gen_select(self, b: Builder, pool: list[Value], depth: int) -> None:
        t = self.numeric_type(ELEMS)
        cond = self.value_of(b, pool, t.with_scalar(i1))
        self.emit(b, pool, "select", [cond, self.value_of(b, pool, t), self.value_of(b, pool, t)], t)

    def gen_cast(self, b: Builder, pool: list[Value], depth: int) -> None:
        t = self.numeric_type(ELEMS)
        name = self.draw(st.sampled_from(["cast", "bitcast"]))
        elems = [e for e in ELEMS if name == "cast" or e.bits == t.scalar.bits]
        self.emit(b, pool, name, [self.value_of(b, pool, t)], t.with_scalar(self.draw(st.sampled_from(elems))))

    def gen_splat(self, b: Builder, pool: list[Value], depth: int) -> None:
        elem = self.draw(st.sampled_from(ELEMS))
        dims = self.draw(shapes) or (4,)
        self.emit(b, pool, "splat", [self.value_of(b, pool, elem)], BlockType(dims, elem))

    def gen_broadcast(self, b: Builder, pool: list[Value], depth: int) -> None:
        elem = self.draw(st.sampled_from(ELEMS))
        dims = self.draw(shapes) or (8,)
        small = tuple(d if self.draw(st.booleans()) else 1 for d in dims)
        src = self.value_of(b, pool, BlockType(small, elem))
        axis = self.draw(st.integers(0, len(small)))
        expanded = small[:axis] + (1,) + small[axis:]
        self.emit(b, pool, "expand_dims", [src], BlockType(expanded, elem), axis=axis)
        self.emit(b, pool, "broadcast", [src], BlockType(dims, elem))

    def gen_reduce(self, b: Builder, pool: list[Value], depth: int) -> None:
        elem = self.draw(st.sampled_from(NUMERIC))
        dims = self.draw(shapes) or (2, 4)
        axis = self.draw(st.integers(0, len(dims) - 1))
        rest = dims[:axis] + dims[axis + 1:]
        self.emit(b, pool, "reduce", [self.value_of(b, pool, BlockType(dims, elem))], block(rest, elem),
                  axis=axis, kind=self.draw(st.sampled_from(["sum", "max", "min"])))

    def gen_memory(self, b: Builder, pool: list[Value], depth: int) -> None:
        ptrs = [v for v in pool if isinstance(v.type, PointerType)]
        if not ptrs:
            return self.gen_const(b, pool, depth)
        p = self.draw(st.sampled_from(ptrs))
        dims = self.draw(shapes)
        t = block(dims, p.type)
        if dims:
            p = self.emit(b, pool, "splat", [p], t)
        offset_type = t.with_scalar(self.draw(st.sampled_from([i32, i64])))
        ptr = self.emit(b, pool, "addptr", [p, self.value_of(b, pool, offset_type)], t)
        value_type = t.with_scalar(t.scalar.elem)
        masks = [self.value_of(b, pool, t.with_scalar(i1))] if self.draw(st.booleans()) else []
        if self.draw(st.booleans()):
            other = [self.value_of(b, pool, value_type)] if masks and self.draw(st.booleans()) else []
            self.emit(b, pool, "load", [ptr, *masks, *other], value_type)
        else:
            b.create("store", [ptr, self.value_of(b, pool, value_type), *masks], [])

    def carried_types(self) -> list[Type]:
        return [self.numeric_type(ELEMS) for _ in range(self.draw(st.integers(0, 2)))]

    def nested(self, b: Builder, pool: list[Value], region: Region, types: list[Type], depth: int) -> None:
        """Fill `region` (seeing `pool` and its own arguments) and yield values of `types`."""
        inner = pool + list(region.args)
        with b.at(region):
            self.region(b, inner, depth - 1, self.draw(st.integers(0, 4)))
            b.create("yield", [self.value_of(b, inner, t) for t in types], [])

    def gen_for(self, b: Builder, pool: list[Value], depth: int) -> None:
        iv = self.draw(st.sampled_from([i32, i64, u32]))
        bounds = [self.value_of(b, pool, iv) for _ in range(3)]
        types = self.carried_types()
        inits = [self.value_of(b, pool, t) for t in types]
        body = Region([iv, *types])
        self.nested(b, pool, body, types, depth)
        op = b.create("for", [*bounds, *inits], types, regions=[body])
        pool.extend(op.results)

    def gen_if(self, b: Builder, pool: list[Value], depth: int) -> None:
        cond = self.value_of(b, pool, i1)
        types = self.carried_types()
        regions = [Region(), Region()]
        for region in regions:
            self.nested(b, pool, region, types, depth)
        op = b.create("if", [cond], types, regions=regions)
        pool.extend(op.results)

    def gen_call(self, b: Builder, pool: list[Value], depth: int) -> None:
        callee = self.draw(st.sampled_from(self.callees()))
        args = [self.value_of(b, pool, a.type) for a in callee.args]
        pool.extend(b.create("call", args, callee.result_types, {"callee": callee.name}).results)

    def function(self, name: str, is_kernel: bool) -> Function:
        if is_kernel:
            arg_types: list[Type] = [PointerType(self.draw(st.sampled_from(NUMERIC))) for _ in range(2)] + [i32]
        else:
            arg_types = [self.numeric_type(ELEMS) for _ in range(self.draw(st.integers(0, 3)))]
        names = [self.draw(st.sampled_from([None, "x", "n", "ptr"])) for _ in arg_types]
        fn = Function(name, arg_types, [], names, is_kernel=is_kernel, loc=self.draw(locs))
        b = Builder(fn.body, self.draw(locs))
        pool = list(fn.args)
        self.region(b, pool, 2, self.draw(st.integers(1, 10)))
        results = [] if is_kernel else self.draw(st.lists(st.sampled_from(pool), max_size=2))
        fn.result_types = [v.type for v in results]
        b.create("return", results, [])
        return fn


@st.composite
def modules(draw) -> Module:
    module = Module()
    gen = IRGen(draw, module)
    for i in range(draw(st.integers(0, 2))):
        module.add(gen.function(f"dev{i}", is_kernel=False))
    module.add(gen.function("kern", is_kernel=True))
    return module
