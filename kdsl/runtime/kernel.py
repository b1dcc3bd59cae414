"""`@kdsl.kernel`: the Kernel object, `kernel[grid](...)` launches and `kernel.compile(...)`."""
from __future__ import annotations

import functools
import threading
from typing import Any, Callable

from kdsl.compiler import CompiledKernel, CompileOptions, compile_kernel, resolve_arch
from kdsl.errors import KdslError, LaunchError
from kdsl.frontend.source import KernelSource, read_source
from kdsl.interpreter.context import active_session
from kdsl.runtime.binding import BoundLaunch, bind, quick_signature, resolve_grid, target_for

LAUNCH_OPTIONS = ("target", "num_warps", "num_stages", "checked")


class Kernel:
    """A `@kdsl.kernel` function: compiled on its first launch, once per specialization.

    A specialization is what the compiled code depends on: the types of the runtime arguments,
    which pointers and ints are divisible by 16, which ints are 1 and which are 0, positive or
    negative, the values of the `kl.constexpr` parameters, the target and the launch options.
    Called from inside another kernel, a kernel is a device function, inlined into its caller.
    """

    def __init__(self, fn: Callable):
        if not callable(fn) or not hasattr(fn, "__code__"):
            raise KdslError(f"@kdsl.kernel decorates a function, not {type(fn).__name__}")
        self.fn = fn
        functools.update_wrapper(self, fn)
        self._source: KernelSource | None = None
        self._cache: dict[tuple, CompiledKernel] = {}
        self._quick: dict[tuple, CompiledKernel] = {}  # see `quick_key`
        self._positional_runtime: dict[int, bool] = {}
        self._lock = threading.Lock()

    @property
    def source(self) -> KernelSource:
        if self._source is None:
            self._source = read_source(self.fn)
        return self._source

    def __repr__(self) -> str:
        return f"<kdsl.Kernel {self.fn.__qualname__}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        session = active_session()
        if session is not None:  # a device function called from an interpreted kernel
            return session.function(self.fn)(*args, **kwargs)
        raise KdslError(f"launch a kernel with {self.fn.__name__}[grid](...); calling it directly "
                        "only works inside another kernel")

    def __getitem__(self, grid: Any) -> Callable[..., None]:
        return functools.partial(self.run, grid=grid)

    def run(self, *args: Any, grid: Any, **kwargs: Any) -> None:
        """Launch the kernel over `grid`: `kernel[grid](*args, **kwargs)` is this call.

        `grid` is an int, a tuple of 1 to 3 ints, or a callable that takes a dict of every
        argument by name (runtime and constexpr alike) and returns one of those; a grid with a
        zero dimension launches nothing. Arguments bind to the parameters as in a Python call.
        Arrays (numpy, torch, `__array_interface__`, `__cuda_array_interface__`, DLPack on the
        CPU) become pointers to their first element, never copies; Python ints become `i32`
        (`i64`, then `u64`, when they do not fit), floats `fp32`, bools `i1`, numpy scalars
        their own type. `kl.constexpr` parameters take compile-time values (numbers, strings,
        tuples, dtypes, None). The launch options travel in `kwargs` too (a kernel with a
        parameter of the same name also receives the value):

        - `target`: "cpu", "cuda", "sim" (the GPU code path on the PTX simulator) or
          "interpret" (the Python function run on numpy); by default "cuda" when the arrays are
          on a CUDA device, else "cpu".
        - `num_warps`, `num_stages`: positive ints for the GPU targets (4 and 3 by default):
          the warps of a program, and the shared-memory slots of a pipelined K loop.
        - `checked`: with True (the default) every load, store and atomic of a `cpu` launch is
          checked against the arrays its pointer derives from (a `MemoryAccessError` before
          the access); False compiles the checks out. `sim` and `interpret` always check.

        Bad arguments, grids or targets raise `LaunchError` before anything runs. A CPU launch
        like an earlier one (`quick_key`) skips the binding and goes straight to its program.
        """
        quick = self.quick_key(args, kwargs)
        if quick is not None:
            compiled = self._quick.get(quick[0])
            if compiled is not None:
                dims = _plain_grid(grid) or resolve_grid(
                    self.source.name, grid, self.source.bind(args, kwargs, LaunchError) if callable(grid) else {})
                if 0 not in dims:
                    compiled.program.launch(quick[1], dims, args)
                return
        options_in = self._launch_options(kwargs, LAUNCH_OPTIONS)
        bound = bind(self.source, args, kwargs)
        options = self._options(bound, **options_in)
        dims = resolve_grid(self.source.name, grid, bound.by_name)
        if options.target == "interpret":
            from kdsl.interpreter.launch import interpret

            if 0 not in dims:
                interpret(self, bound, dims)
            return
        compiled = self._compiled(bound, options)
        if 0 in dims:
            return
        compiled.launch(bound, dims)
        if quick is not None and compiled.target == "cpu":  # a launch that passed every check
            self._quick[quick[0]] = compiled

    def quick_key(self, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, list[int | float]] | None:
        """The fast path's key for a launch and its raw argument values, where it applies: every
        positional argument a runtime one (`binding.quick_signature`), every keyword a
        compile-time constant (no launch options but `checked`), all hashable. Constants other
        than ints and strings enter by type and repr, as in `BoundLaunch.key` (1, 1.0 and True
        compile apart)."""
        source = self.source
        if any(k != "checked" and (k in LAUNCH_OPTIONS or k not in source.constexprs) for k in kwargs):
            return None
        if len(args) not in self._positional_runtime:
            self._positional_runtime[len(args)] = not any(p in source.constexprs for p in source.params[:len(args)])
        if not self._positional_runtime[len(args)]:
            return None
        quick = quick_signature(args)
        if quick is None:
            return None
        return (quick[0], tuple((k, v) if type(v) in (int, str) else (k, type(v).__name__, repr(v))
                                for k, v in kwargs.items())), quick[1]

    def compile(self, *args: Any, target: str = "cpu", arch: str | None = None, stages: bool = False,
                cubin: bool = False, **kwargs: Any) -> CompiledKernel:
        """Compile for example arguments without launching, as a launch with these arguments and
        the options `num_warps`, `num_stages` and `checked` would; `.asm` holds the IR and the LLVM.

        With `stages=True`, `.asm["ir_stages"]` maps each pipeline stage to the IR after it.
        GPU targets ("sim", "cuda": no GPU needed with `arch=`) add "ptx", and with `cubin=True`
        where ptxas is installed, "cubin" and ptxas's resource report "ptxas".
        """
        options_in = self._launch_options(kwargs, ("num_warps", "num_stages", "checked"))
        bound = bind(self.source, args, kwargs)
        options = self._options(bound, target=target, arch=arch, stages=stages, cubin=cubin, **options_in)
        return self._compiled(bound, options)

    def _launch_options(self, kwargs: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
        """The launch options among `kwargs`, taken out of them unless the kernel also has a
        parameter of that name (Triton's softmax tutorial takes `num_stages: tl.constexpr`),
        which then gets the value too."""
        params = self.source.params
        return {k: kwargs[k] if k in params else kwargs.pop(k) for k in names if k in kwargs}

    def _options(self, bound: BoundLaunch, target: str | None = None, arch: str | None = None,
                 **rest: Any) -> CompileOptions:
        for name in ("num_warps", "num_stages"):
            value = rest.get(name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise LaunchError(f"'{self.source.name}': {name} must be a positive int, got {value!r}")
        if not isinstance(rest.get("checked", True), bool):
            raise LaunchError(f"'{self.source.name}': checked must be True or False, got {rest['checked']!r}")
        target = target_for(self.source.name, target, bound.devices)
        return CompileOptions(target=target, arch=resolve_arch(target, arch, bound),
                              **{k: v for k, v in rest.items() if v is not None})

    def _compiled(self, bound: BoundLaunch, options: CompileOptions) -> CompiledKernel:
        key = (bound.key(), options.key())
        compiled = self._cache.get(key)
        if compiled is None:
            with self._lock:
                compiled = self._cache.get(key)
                if compiled is None:
                    compiled = compile_kernel(self, bound, options)
                    self._cache[key] = compiled
        return compiled


def _plain_grid(grid: Any) -> tuple[int, int, int] | None:
    """A grid given as a tuple of 1 to 3 valid ints, padded to three; None for anything else."""
    if type(grid) is not tuple or not 1 <= len(grid) <= 3:
        return None
    for d in grid:
        if type(d) is not int or not 0 <= d < 2**31:
            return None
    return grid + (1,) * (3 - len(grid))  # type: ignore[return-value]


def kernel(fn: Callable) -> Kernel:
    """Decorator: turn a Python function into a `Kernel`, launched with `kernel[grid](*args)`."""
    return Kernel(fn)
