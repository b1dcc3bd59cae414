"""The long differential fuzzing run: `python -m tests.fuzz --minutes 30 [--seed S]`.

Draws kernels from the generator of tests/fuzz/kernels.py (the one test_fuzz.py's hypothesis
strategy wraps), seeded: kernel i of a run with seed S is generated, and its inputs drawn, from a
seed derived from "S:i", so `--replay S:i` runs it again. Each kernel runs on every target (cpu and
sim by default) against the numpy evaluation. A mismatch, an exception of any launch (or of the
build), a kernel past `--kernel-timeout` and a broken invariant of the fuzzer itself (the generator
or the reference) are failures; the run goes on after them. At the end it prints how many kernels
it tried, how many used each feature, and every failure with its kernel's source. The exit status
is 1 if anything failed.

Kernels run in a worker process, so that one that kills its process (a native crash, an abort in
LLVM) or hangs in native code is reported like any other failure: the worker's death (or its
running past the timeout, when it is killed) is that kernel's crash, reported with the kernel's
source and what the worker wrote to stderr, and a fresh worker goes on with the next kernel.

Compiled kernels go to a fresh temporary cache unless KDSL_CACHE_DIR is set."""
from __future__ import annotations

import argparse
import collections
import hashlib
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback


class KernelTimeout(BaseException):
    """A kernel ran past --kernel-timeout (a BaseException, so that no handler of the checker
    mistakes it for the kernel's own failure)."""


def kernel_seed(seed: int, index: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{index}".encode()).digest()[:8], "little")


def _alarm(signum, frame):
    raise KernelTimeout()


def run_one(K, seed, index, args, directory):
    """(spec or None, list of (target, what, message))."""
    ks = kernel_seed(seed, index)
    structures = tuple(args.structures.split(","))
    try:
        spec = K.generate(K.RandomChooser(ks), structures, args.size)
        spec.source  # noqa: B018 - emitting the source is part of generating
    except Exception:  # noqa: BLE001
        return None, [("generator", "generator", traceback.format_exc())]
    if args.kernel_timeout:
        signal.setitimer(signal.ITIMER_REAL, args.kernel_timeout)
    try:
        failures = K.check(spec, ks, tuple(args.targets.split(",")), directory=directory)
        return spec, [(f.target, f.what, f.message) for f in failures]
    except KernelTimeout:
        return spec, [("any", "timeout", f"the kernel ran past {args.kernel_timeout} s")]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def report_failure(seed, index, spec, failures, out=sys.stdout):
    print(f"--- kernel {seed}:{index} (replay: python -m tests.fuzz --replay {seed}:{index}) ---", file=out)
    if spec is not None:
        print(spec.geo, file=out)
        print(spec.source, file=out)
    for target, what, message in failures:
        print(f"[{target}] {what}: {message.rstrip()}", file=out)
    print(file=out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0, help="how long to run (default 30)")
    ap.add_argument("--seed", type=int, default=None, help="the run's seed (default: a random one, printed)")
    ap.add_argument("--targets", default="cpu,sim", help="comma-separated targets (default cpu,sim)")
    ap.add_argument("--structures", default="flat,tile,loop", help="kernel structures to draw from")
    ap.add_argument("--size", type=int, default=8, help="how many operations kernels have, roughly")
    ap.add_argument("--max-kernels", type=int, default=None, help="stop after this many kernels")
    ap.add_argument("--kernel-timeout", type=float, default=300.0, help="seconds one kernel may take (0: no limit)")
    ap.add_argument("--replay", metavar="S:I", help="run kernel I of the run with seed S again, print it, and stop")
    args = ap.parse_args(argv)
    if not args.structures or set(args.structures.split(",")) - {"flat", "tile", "loop"}:
        ap.error("--structures takes a comma-separated list of flat, tile and loop")

    own_cache = None
    if "KDSL_CACHE_DIR" not in os.environ:
        own_cache = os.environ["KDSL_CACHE_DIR"] = tempfile.mkdtemp(prefix="kdsl-fuzz-cache-")
    os.environ.setdefault("KDSL_QUIET", "1")
    from tests.fuzz import kernels as K

    signal.signal(signal.SIGALRM, _alarm)
    directory = tempfile.mkdtemp(prefix="kdsl-fuzz-")
    try:
        if args.replay:
            seed, index = (int(x) for x in args.replay.split(":"))
            spec, failures = run_one(K, seed, index, args, directory)
            if spec is not None:
                print(spec.geo)
                print(spec.source)
                print("features:", ", ".join(sorted(spec.features)))
            if failures:
                report_failure(seed, index, spec, failures)
                return 1
            print(f"kernel {seed}:{index} passed on {args.targets}")
            return 0
        return fuzz(K, args, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        if own_cache:
            shutil.rmtree(own_cache, ignore_errors=True)


def worker(conn, args, stderr_path):
    """Runs the kernels the parent sends (indices; None to stop), answering ("done", index,
    features, failures) for each; its stderr goes to `stderr_path`, emptied at each kernel."""
    err = open(stderr_path, "wb")  # noqa: SIM115 - stays open as the process's fd 2
    os.dup2(err.fileno(), 2)
    if "KDSL_CACHE_DIR" not in os.environ:
        raise AssertionError("the parent sets KDSL_CACHE_DIR")
    from tests.fuzz import kernels as K
    directory = tempfile.mkdtemp(prefix="kdsl-fuzz-")
    args.kernel_timeout = 0  # the parent enforces it, killing this process
    try:
        while True:
            index = conn.recv()
            if index is None:
                return
            os.ftruncate(2, 0)
            os.lseek(2, 0, os.SEEK_SET)
            spec, failures = run_one(K, args.seed, index, args, directory)
            conn.send(("done", index, sorted(spec.features) if spec is not None else [], failures))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


class Worker:
    def __init__(self, args, stderr_path):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.stderr_path = stderr_path
        self.proc = ctx.Process(target=worker, args=(child, args, stderr_path), daemon=True)
        self.proc.start()
        child.close()

    def run(self, index, timeout):
        """("done", index, features, failures), or ("died", message) / ("timeout", message)."""
        self.conn.send(index)
        start = time.monotonic()
        while True:
            if self.conn.poll(0.5):
                try:
                    return self.conn.recv()
                except (EOFError, OSError):  # the worker died: below
                    time.sleep(0.2)
            if not self.proc.is_alive():
                self.proc.join()
                code = self.proc.exitcode
                how = f"signal {-code} ({signal.Signals(-code).name})" if code and code < 0 else f"exit status {code}"
                return ("died", f"the worker process died ({how}) running this kernel; its stderr:\n"
                                + self.stderr_tail())
            if timeout and time.monotonic() - start > timeout:
                self.proc.kill()
                self.proc.join()
                return ("timeout", f"the kernel ran past {timeout:g} s (the worker was killed); its stderr:\n"
                                   + self.stderr_tail())

    def stderr_tail(self, limit=4000) -> str:
        try:
            with open(self.stderr_path, "rb") as f:
                data = f.read()
        except OSError:
            return "(unreadable)"
        return data[-limit:].decode(errors="replace").rstrip() or "(empty)"

    def stop(self):
        if self.proc.is_alive():
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.proc.join(10)
            if self.proc.is_alive():
                self.proc.kill()


def fuzz(K, args, directory) -> int:
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    args.seed = seed
    print(f"kdsl fuzz: seed {seed}, {args.minutes:g} minutes, targets {args.targets}, structures {args.structures}",
          flush=True)
    start = time.monotonic()
    deadline = start + args.minutes * 60
    features: collections.Counter = collections.Counter()
    kinds: collections.Counter = collections.Counter()
    failed = []
    tried = 0
    restarts = 0
    next_progress = start + 30
    stderr_path = os.path.join(directory, "worker.stderr")
    w = Worker(args, stderr_path)
    try:
        while time.monotonic() < deadline and (args.max_kernels is None or tried < args.max_kernels):
            index = tried
            answer = w.run(index, args.kernel_timeout)
            tried += 1
            if answer[0] == "done":
                _, _, feats, failures = answer
                features.update(feats)
                spec = None
                if failures:  # the worker's spec does not cross the pipe: the same seed makes it again
                    spec = K.generate(K.RandomChooser(kernel_seed(seed, index)),
                                      tuple(args.structures.split(",")), args.size)
            else:
                what, message = answer
                spec = K.generate(K.RandomChooser(kernel_seed(seed, index)), tuple(args.structures.split(",")),
                                  args.size)
                features.update(spec.features)
                failures = [("process", "crash" if what == "died" else "timeout", message)]
                restarts += 1
                w = Worker(args, stderr_path)
            if failures:
                failed.append((index, spec, failures))
                kinds.update({what for _, what, _ in failures})
                first = failures[0]
                last_line = first[2].strip().splitlines()[-1] if first[2].strip() else ""
                print(f"FAIL kernel {seed}:{index}: [{first[0]}] {first[1]}: {last_line[:200]}", flush=True)
            now = time.monotonic()
            if now >= next_progress:
                print(f"[{(now - start) / 60:5.1f} min] {tried} kernels, {len(failed)} failed", flush=True)
                next_progress = now + 30
    finally:
        w.stop()
    elapsed = time.monotonic() - start
    print()
    print(f"== kdsl fuzz: seed {seed}: {tried} kernels in {elapsed / 60:.1f} minutes ({tried / elapsed:.2f}/s), "
          f"targets {args.targets} ==")
    print(f"passed: {tried - len(failed)}, failed: {len(failed)}"
          + (" (" + ", ".join(f"{k}: {v}" for k, v in sorted(kinds.items())) + ")" if kinds else "")
          + (f"; worker processes restarted {restarts} times" if restarts else ""))
    print("\nkernels per feature:")
    width = max((len(f) for f in features), default=0)
    for name in sorted(features):
        print(f"  {name:<{width}}  {features[name]}")
    if failed:
        print(f"\n== {len(failed)} failures ==")
        for index, spec, failures in failed:
            report_failure(seed, index, spec, failures)
    return 1 if failed else 0
