"""The native code of the CPU thread pool (see `threads`), as LLVM IR.

Workers are native threads that never touch Python: they wait on the pool's
`generation` word, first spinning (so that a launch that follows soon after the
last one finds them awake: waking a sleeping thread costs tens of microseconds,
more on a virtual machine), then in the kernel (a Linux futex). A launch writes
its kernel, arguments and grid into the pool's state, bumps the generation and
wakes the sleepers; every worker then takes chunks of consecutive program ids
from a shared counter until none are left (or a program failed an assertion),
and the last worker to finish wakes the launching thread, which has been
taking chunks too where its stack allows.

The state is an array of 8-byte slots that Python allocates (`abi.POOL_SLOTS`); the
futex words are the low halves of their slots.

    void kdsl_pool_run(state, launch, argv, total, chunk, gx, gy, gz, status, wanted, caller_runs)
    void* kdsl_pool_worker(ptr to {state, worker index})
    void kdsl_pool_stop(state)
"""
from __future__ import annotations

import platform

from llvmlite import ir

from kdsl.backend.cpu import launcher
from kdsl.backend.cpu.abi import FUTEX_SYSCALL, POOL_RUN, POOL_SLOT, POOL_STOP, POOL_WORKER
from kdsl.backend.cpu.llvm_types import I32, I64, PTR

SPINS = 1 << 14  # polls of a futex word before sleeping on it: about 150 us here
FUTEX_WAIT_PRIVATE, FUTEX_WAKE_PRIVATE = 128, 129


class _Emitter:
    def __init__(self, module: ir.Module):
        self.module = module
        self.syscall = ir.Function(module, ir.FunctionType(I64, [I64], var_arg=True), name="syscall")
        self.pause = (ir.Function(module, ir.FunctionType(ir.VoidType(), []), name="llvm.x86.sse2.pause")
                      if platform.machine() == "x86_64" else None)

    def slot(self, b: ir.IRBuilder, state: ir.Value, name: str) -> ir.Value:
        return b.gep(state, [ir.Constant(I64, POOL_SLOT[name])], inbounds=True, source_etype=I64)

    def get(self, b: ir.IRBuilder, state: ir.Value, name: str) -> ir.Value:
        return b.load(self.slot(b, state, name), typ=I64)

    def futex(self, b: ir.IRBuilder, word: ir.Value, op: int, value: ir.Value) -> None:
        b.call(self.syscall, [ir.Constant(I64, FUTEX_SYSCALL[platform.machine()]), word,
                              ir.Constant(I32, op), value, ir.Constant(PTR, None)])

    def wait_while(self, b: ir.IRBuilder, word: ir.Value, value: ir.Value) -> ir.Value:
        """Wait until the 32-bit `word` differs from `value` (spinning, then sleeping); returns it."""
        poll, idle, sleep, spin, done = _blocks(b.function, "poll", "idle", "sleep", "spin", "changed")
        start = b.block
        b.branch(poll)
        b.position_at_end(poll)
        polls = b.phi(I64)
        polls.add_incoming(ir.Constant(I64, 0), start)
        now = b.load_atomic(word, "acquire", 4, typ=I32)
        b.cbranch(b.icmp_unsigned("!=", now, value), done, idle)
        b.position_at_end(idle)
        b.cbranch(b.icmp_unsigned("<", polls, ir.Constant(I64, SPINS)), spin, sleep)
        b.position_at_end(spin)
        if self.pause is not None:
            b.call(self.pause, [])
        polls.add_incoming(b.add(polls, ir.Constant(I64, 1)), spin)
        b.branch(poll)
        b.position_at_end(sleep)
        self.futex(b, word, FUTEX_WAIT_PRIVATE, value)
        polls.add_incoming(ir.Constant(I64, 0), sleep)
        b.branch(poll)
        b.position_at_end(done)
        return now

    def run_chunks(self) -> ir.Function:
        """Take chunks of program ids and run them until none are left or a program failed."""
        fn = ir.Function(self.module, ir.FunctionType(ir.VoidType(), [PTR]), name="kdsl_pool_chunks")
        fn.linkage = "internal"
        state, = fn.args
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        launch = b.inttoptr(self.get(b, state, "launch"), launcher.SIGNATURE.as_pointer())
        argv, status = (b.inttoptr(self.get(b, state, name), PTR) for name in ("argv", "status"))
        total, chunk = self.get(b, state, "total"), self.get(b, state, "chunk")
        gx, gy, gz = (b.trunc(self.get(b, state, name), I32) for name in ("gx", "gy", "gz"))
        take, run, finished = _blocks(fn, "take", "run", "finished")
        b.branch(take)
        b.position_at_end(take)
        failed = b.icmp_unsigned("!=", b.load_atomic(status, "monotonic", 8, typ=I64), ir.Constant(I64, 0))
        begin = b.atomic_rmw("add", self.slot(b, state, "next"), chunk, "monotonic")
        b.cbranch(b.or_(failed, b.icmp_signed(">=", begin, total)), finished, run)
        b.position_at_end(run)
        end = b.add(begin, chunk)
        end = b.select(b.icmp_signed("<", end, total), end, total)
        b.call(launch, [argv, begin, end, gx, gy, gz, status])
        b.branch(take)
        b.position_at_end(finished)
        b.ret_void()
        return fn

    def worker(self, chunks: ir.Function) -> None:
        fn = ir.Function(self.module, ir.FunctionType(PTR, [PTR]), name=POOL_WORKER)
        arg, = fn.args
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        state = b.load(arg, typ=PTR)
        index = b.load(b.gep(arg, [ir.Constant(I64, 1)], inbounds=True, source_etype=I64), typ=I64)
        generation = self.slot(b, state, "generation")
        entry = b.block
        wait, work, take, report, wake, leave = _blocks(fn, "wait", "work", "take", "report", "wake", "leave")
        b.branch(wait)
        b.position_at_end(wait)
        seen = b.phi(I32)
        seen.add_incoming(ir.Constant(I32, 0), entry)
        now = self.wait_while(b, generation, seen)
        b.cbranch(b.icmp_unsigned("!=", self.get(b, state, "stop"), ir.Constant(I64, 0)), leave, work)
        b.position_at_end(work)
        b.cbranch(b.icmp_signed("<", index, self.get(b, state, "wanted")), take, report)
        b.position_at_end(take)
        b.call(chunks, [state])
        b.branch(report)
        b.position_at_end(report)
        active = self.slot(b, state, "active")
        left = b.atomic_rmw("sub", active, ir.Constant(I64, 1), "acq_rel")
        seen.add_incoming(now, report)
        seen.add_incoming(now, wake)
        b.cbranch(b.icmp_unsigned("==", left, ir.Constant(I64, 1)), wake, wait)
        b.position_at_end(wake)
        self.futex(b, active, FUTEX_WAKE_PRIVATE, ir.Constant(I32, 1))
        b.branch(wait)
        b.position_at_end(leave)
        b.ret(ir.Constant(PTR, None))

    def run(self, chunks: ir.Function) -> None:
        params = [PTR, PTR, PTR, I64, I64, I32, I32, I32, PTR, I64, I64]
        fn = ir.Function(self.module, ir.FunctionType(ir.VoidType(), params), name=POOL_RUN)
        state, launch, argv, total, chunk, gx, gy, gz, status, wanted, caller_runs = fn.args
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        for name, value in (("launch", launch), ("argv", argv), ("status", status)):
            b.store(b.ptrtoint(value, I64), self.slot(b, state, name))
        for name, value in (("total", total), ("chunk", chunk), ("wanted", wanted),
                            ("gx", b.zext(gx, I64)), ("gy", b.zext(gy, I64)), ("gz", b.zext(gz, I64))):
            b.store(value, self.slot(b, state, name))
        b.store(ir.Constant(I64, 0), self.slot(b, state, "next"))
        active = self.slot(b, state, "active")
        b.store(self.get(b, state, "workers"), active)
        self.publish(b, state)
        with b.if_then(b.icmp_unsigned("!=", caller_runs, ir.Constant(I64, 0))):
            b.call(chunks, [state])
        loop, done = _blocks(fn, "until_idle", "idle")
        b.branch(loop)
        b.position_at_end(loop)
        left = b.load_atomic(active, "acquire", 8, typ=I64)
        with b.if_then(b.icmp_unsigned("!=", left, ir.Constant(I64, 0))):
            self.wait_while(b, active, b.trunc(left, I32))
        b.cbranch(b.icmp_unsigned("==", b.load_atomic(active, "acquire", 8, typ=I64), ir.Constant(I64, 0)),
                  done, loop)
        b.position_at_end(done)
        b.ret_void()

    def stop(self) -> None:
        fn = ir.Function(self.module, ir.FunctionType(ir.VoidType(), [PTR]), name=POOL_STOP)
        state, = fn.args
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        b.store(ir.Constant(I64, 1), self.slot(b, state, "stop"))
        self.publish(b, state)
        b.ret_void()

    def publish(self, b: ir.IRBuilder, state: ir.Value) -> None:
        """Start a new generation (releasing what was written before) and wake the sleepers."""
        generation = self.slot(b, state, "generation")
        b.atomic_rmw("add", generation, ir.Constant(I32, 1), "release")
        self.futex(b, generation, FUTEX_WAKE_PRIVATE, ir.Constant(I32, 2**31 - 1))


def _blocks(fn: ir.Function, *names: str) -> list[ir.Block]:
    return [fn.append_basic_block(name) for name in names]


def emit(module: ir.Module) -> None:
    """The pool's functions, into `module`."""
    emitter = _Emitter(module)
    chunks = emitter.run_chunks()
    emitter.worker(chunks)
    emitter.run(chunks)
    emitter.stop()
