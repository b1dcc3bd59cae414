"""Checked accesses on the CPU: every active address of a load, store or atomic lies in an
argument its pointer derives from (`kdsl.ir.passes.provenance`), or the program reports the first
element that does not and stops before the access.

A checked kernel takes one more parameter: the byte span [lo, hi) of each argument (two i64 per
argument, after the argument slots of `launcher`), read once at its entry. The checks come before
the loops of a run (`KernelLowering.element_ops`), so those loops stay as they are and vectorise
as before; they recompute the addresses and masks the run computes (a gather's index loads
included: an earlier access of the run, checked first). Where the pointer block's rows are
consecutive addresses (axis analysis), a row is inside a span when its two ends are, and only the
rows' ends are tested; where that fails (a masked tail past the end of an array, say), only the
elements of each row beyond the part inside the array are tested (`check_row_ends`). Where the
addresses are not known to be consecutive, or may lie in one of several arrays, every active
element is tested, in a loop that vectorises. Only when one is outside does a scalar loop find the
first, which is reported through the launch's status (`lower_debug.report`) with the negated
number of its `AccessSite`.
"""
from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING

from llvmlite import ir

from kdsl.backend.cpu.llvm_types import I1, I64, elem_of
from kdsl.backend.cpu.loops import counted_loop, element_loop
from kdsl.backend.cpu.lower_debug import report
from kdsl.ir.core import Operation, Value
from kdsl.ir.passes.provenance import Provenance
from kdsl.ir.types import BlockType, PointerType
from kdsl.runtime.bounds import AccessSite

if TYPE_CHECKING:
    from kdsl.backend.cpu.lower import KernelLowering

_MASK_OPERAND = {"load": 1, "store": 2, "atomic_rmw": 2}


def access_mask(op: Operation) -> Value | None:
    k = _MASK_OPERAND.get(op.name)
    return op.operands[k] if k is not None and len(op.operands) > k else None


class BoundsChecks:
    """The checks of one kernel's accesses; `sites` describes them for the runtime."""

    def __init__(self, lowering: "KernelLowering", spans: ir.Value):
        self.lowering = lowering
        self.provenance = Provenance(lowering.fn)
        self.sites: list[AccessSite] = []
        entry = lowering.entry
        # The spans do not change during a launch; saying so lets LLVM load them once per run
        # of programs, not once per program (the kernel's stores could otherwise alias them).
        invariant = entry.module.add_metadata([])
        self.spans: dict[int, tuple[ir.Value, ir.Value]] = {}
        for index, arg in enumerate(lowering.fn.args):
            if isinstance(arg.type, PointerType):
                ends = [entry.load(entry.gep(spans, [ir.Constant(I64, 2 * index + k)], inbounds=True,
                                             source_etype=I64), typ=I64) for k in (0, 1)]
                for end in ends:
                    end.set_metadata("invariant.load", invariant)
                self.spans[index] = (ends[0], ends[1])

    def check(self, op: Operation, within: set[Operation] | None) -> None:
        """Check `op`'s active addresses before it runs; `within`: the ops of the run it is in,
        which the check computes again (None: its operands are in buffers or `recomputable`)."""
        low = self.lowering
        ptr, mask = op.operands[0], access_mask(op)
        arguments = tuple(sorted(self.provenance[ptr] or self.spans))
        size = elem_of(ptr.type).elem.bytes
        shape = ptr.type.shape if isinstance(ptr.type, BlockType) else ()
        self.sites.append(AccessSite(op.loc, op.name.replace("_", " "), shape, arguments))
        code = ir.Constant(I64, -len(self.sites))
        b = low.b

        def active(i: ir.Value | None) -> ir.Value:
            """Whether element i is masked in; i is None for a scalar access."""
            return (ir.Constant(I1, 1) if mask is None else low.values[mask] if i is None
                    else low.recomputed(mask, i, within))

        def address(i: ir.Value | None) -> ir.Value:
            return b.ptrtoint(low.values[ptr] if i is None else low.recomputed(ptr, i, within), I64)

        def outside(i: ir.Value | None) -> tuple[ir.Value, ir.Value]:
            """(address of element i, whether it is active and outside every span)."""
            at = address(i)
            return at, b.and_(active(i), b.not_(self.inside(arguments, at, size)))
        if not shape:
            address, bad = outside(None)
            with b.if_then(bad, likely=False):
                report(low, code, ir.Constant(I64, 0), address)
            return
        dims = ptr.type.dims
        if low.axis[ptr].contiguity[-1] >= dims[-1]:
            with b.if_then(b.not_(self.rows_inside(ptr, within, arguments, size)), likely=False):
                if len(arguments) == 1:
                    self.check_row_ends(ptr, within, arguments[0], size, active, address, code)
                else:
                    self.check_elements(dims, outside, code)
            return
        self.check_elements(dims, outside, code)

    def check_row_ends(self, ptr: Value, within: set[Operation] | None, argument: int, size: int,
                       active, address, code: ir.Value) -> None:
        """Rows of consecutive addresses into one array: element j of a row that starts at address
        `a` lies in the array's span [lo, hi) exactly when ceil((lo - a) / size) <= j <=
        floor((hi - size - a) / size), so only the elements before and after that range, all
        outside, have their masks tested (a masked tail's, not the whole row's), in order, and the
        first active one is reported: scalar loops, which cost little to compile."""
        low, b = self.lowering, self.lowering.b
        dims = ptr.type.dims
        width = ir.Constant(I64, dims[-1])
        zero, one = ir.Constant(I64, 0), ir.Constant(I64, 1)
        shift = ir.Constant(I64, size.bit_length() - 1)
        lo, hi = self.spans[argument]

        def clamped(v: ir.Value) -> ir.Value:
            v = b.select(b.icmp_signed("<", v, zero), zero, v)
            return b.select(b.icmp_signed(">", v, width), width, v)
        with element_loop(b, prod(dims[:-1]), "bounds.ends", vectorise=False, unroll=False) as r:
            start = b.mul(r, width, flags=["nuw", "nsw"])
            with low.at_element(start):
                first = address(start)
            begin = clamped(b.neg(b.ashr(b.sub(first, lo), shift)))
            end = clamped(b.add(b.ashr(b.sub(b.sub(hi, ir.Constant(I64, size)), first), shift), one))
            end = b.select(b.icmp_signed("<", end, begin), begin, end)
            for part_start, part_stop in ((zero, begin), (end, width)):
                with counted_loop(b, part_start, part_stop, one, name="bounds.end", vectorise=False,
                                  unroll=False) as j:
                    i = b.add(start, j, flags=["nuw", "nsw"])
                    with low.at_element(i):
                        with b.if_then(active(i), likely=False):  # outside, all of them: only the mask is tested
                            report(low, code, i, address(i))

    def check_elements(self, dims: tuple[int, ...], outside, code: ir.Value) -> None:
        """Test every active element, in a loop that vectorises (a masked tail past an array's end
        takes it at every run); only where one is outside does `report_first` look for it."""
        low, b = self.lowering, self.lowering.b
        any_bad = low.entry.alloca(I1)
        b.store(ir.Constant(I1, 0), any_bad)
        with low.fused_loop(dims, "bounds") as i:
            b.store(b.or_(b.load(any_bad), outside(i)[1]), any_bad)
        with b.if_then(b.load(any_bad), likely=False):
            self.report_first(dims, outside, code)

    def report_first(self, dims: tuple[int, ...], outside, code: ir.Value) -> None:
        """Report the first element that is outside, if one is: a scalar loop, which returns from
        the program there (one LLVM is told not to vectorise or unroll, so it costs little to compile)."""
        low, b = self.lowering, self.lowering.b
        with element_loop(b, prod(dims), "bounds.first", vectorise=False, unroll=False) as i:
            with low.at_element(i):
                address, bad = outside(i)
            with b.if_then(bad):
                report(low, code, i, address)

    def rows_inside(self, ptr: Value, within: set[Operation] | None, arguments: tuple[int, ...],
                    size: int) -> ir.Value:
        """Whether both ends of every row of the pointer block (rows of consecutive addresses)
        lie in one span, whatever the mask."""
        low, b = self.lowering, self.lowering.b
        dims = ptr.type.dims
        row = dims[-1]
        ok = low.entry.alloca(I1)
        b.store(ir.Constant(I1, 1), ok)
        with element_loop(b, prod(dims[:-1]), "bounds.rows") as r:
            i = b.mul(r, ir.Constant(I64, row), flags=["nuw", "nsw"])
            with low.at_element(i):
                first = b.ptrtoint(low.recomputed(ptr, i, within), I64)
            last = b.add(first, ir.Constant(I64, (row - 1) * size))
            both = [b.and_(self.inside((k,), first, size), self.inside((k,), last, size)) for k in arguments]
            b.store(b.and_(b.load(ok), _any(b, both)), ok)
        return b.load(ok)

    def inside(self, arguments: tuple[int, ...], address: ir.Value, size: int) -> ir.Value:
        """Whether the `size` bytes at `address` lie in the span of one of `arguments`."""
        b = self.lowering.b
        tests = []
        for k in arguments:
            lo, hi = self.spans[k]
            tests.append(b.and_(b.icmp_unsigned("<=", lo, address),
                                b.icmp_unsigned("<=", address, b.sub(hi, ir.Constant(I64, size)))))
        return _any(b, tests)


def _any(b: ir.IRBuilder, tests: list[ir.Value]) -> ir.Value:
    result = tests[0]
    for test in tests[1:]:
        result = b.or_(result, test)
    return result
