"""`kdsl.autotune`, `kdsl.Config` and `kdsl.heuristics`, as in Triton.

An autotuned kernel times each configuration the first time it sees a new
value of its `key` arguments and launches the fastest from then on; the choice
is kept in memory per (key values, argument dtypes, target) and shown as
`kernel.best_config`. It is also kept in the on-disk cache (`kdsl.cache`), keyed
by the kernel's source, the configs, the key values, the target and the machine,
so another process launches the chosen config without tuning. (The kernels it
calls are not part of that key: a changed device function keeps the old choice,
which stays correct, if perhaps no longer the fastest.) Tuning shows its progress
on a terminal's stderr unless `KDSL_QUIET=1`.
"""
from __future__ import annotations

import ast
import functools
import os
import sys
from typing import Any, Callable, Iterable

import numpy as np

from kdsl import cache
from kdsl.errors import KdslError, LaunchError
from kdsl.runtime.arrays import UnsupportedArray, adapt_array
from kdsl.runtime.binding import target_for
from kdsl.runtime.kernel import Kernel
from kdsl.testing import do_bench, wall_time_ms


class Config:
    """One point of the tuning space: `kwargs` gives constexpr values, `num_warps` and `num_stages`
    the launch options, and `pre_hook`, when given, is called with every argument by name (this
    config's values included) before each launch of this config."""

    def __init__(self, kwargs: dict[str, Any], num_warps: int = 4, num_stages: int = 3,
                 pre_hook: Callable[[dict[str, Any]], None] | None = None):
        self.kwargs = dict(kwargs)
        self.num_warps = num_warps
        self.num_stages = num_stages
        self.pre_hook = pre_hook

    def all_kwargs(self) -> dict[str, Any]:
        """The constexpr values and the launch options, as one dict of launch keywords."""
        return {**self.kwargs, "num_warps": self.num_warps, "num_stages": self.num_stages}

    def __repr__(self) -> str:
        return ", ".join(f"{k}: {v}" for k, v in self.all_kwargs().items())


def _innermost(fn: Any) -> Kernel:
    while not isinstance(fn, Kernel):
        if not hasattr(fn, "fn"):
            raise KdslError(f"autotune and heuristics decorate a @kdsl.kernel, not {type(fn).__name__}")
        fn = fn.fn
    return fn


def _by_name(kernel: Kernel, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    named = dict(zip(kernel.source.params, args))
    named.update(kwargs)
    return named


def _snapshot(array: Any) -> Any:
    return array.clone() if hasattr(array, "clone") else np.array(array, copy=True)


class Heuristics:
    """Computes constexpr values from the other arguments before each launch."""

    def __init__(self, fn: Any, values: dict[str, Callable[[dict[str, Any]], Any]]):
        self.fn = fn
        self.values = values
        functools.update_wrapper(self, _innermost(fn).fn)

    def __getitem__(self, grid: Any) -> Callable[..., None]:
        return functools.partial(self.run, grid=grid)

    def run(self, *args: Any, grid: Any, **kwargs: Any) -> None:
        named = _by_name(_innermost(self.fn), args, kwargs)
        for name, rule in self.values.items():
            try:
                kwargs[name] = named[name] = rule(named)
            except Exception as e:
                raise LaunchError(f"the heuristic for '{name}' raised {type(e).__name__}: {e}") from e
        self.fn.run(*args, grid=grid, **kwargs)


def _clock(kernel: Kernel, args: tuple, kwargs: dict[str, Any]) -> Callable[[Callable[[], object]], float]:
    """Times a launch: CUDA events on the launch's stream for target "cuda", else the host's clock."""
    arrays = [*args, *kwargs.values()]
    devices = set()
    for value in arrays:
        try:
            array = adapt_array(value)
        except UnsupportedArray:
            continue
        if array is not None:
            devices.add(array.device)
    if target_for(kernel.source.name, kwargs.get("target"), devices) != "cuda":
        return wall_time_ms
    from kdsl.backend.cuda.driver import device_for

    device, stream = device_for(arrays)
    return functools.partial(device.time_ms, stream=stream)


class _Progress:
    """A one-line progress report on stderr, shown only on a terminal and without KDSL_QUIET=1."""

    def __init__(self, title: str, total: int):
        self.title, self.total, self.count = title, total, 0
        self.shown = sys.stderr.isatty() and os.environ.get("KDSL_QUIET", "0") in ("", "0")

    def step(self, config: Config) -> None:
        self.count += 1
        if self.shown:
            sys.stderr.write(f"\r\x1b[K{self.title}: config {self.count}/{self.total} ({config})")
            sys.stderr.flush()

    def done(self) -> None:
        if self.shown:
            sys.stderr.write(f"\r\x1b[K{self.title}: {self.total} configs timed\n")
            sys.stderr.flush()


class Autotuner:
    """Runs the fastest of `configs` for each new value of the `key` arguments."""

    def __init__(self, fn: Any, configs: list[Config], key: list[str],
                 prune_configs_by: dict[str, Callable] | None = None, reset_to_zero: Iterable[str] = (),
                 restore_value: Iterable[str] = (), warmup: float = 25, rep: float = 100):
        if not configs:
            raise KdslError("autotune needs at least one Config")
        self.fn = fn
        self.kernel = _innermost(fn)
        self.configs = list(configs)
        self.key = list(key)
        self.prune = prune_configs_by or {}
        self.reset_to_zero = list(reset_to_zero)
        self.restore_value = list(restore_value)
        self.warmup, self.rep = warmup, rep
        self.cache: dict[tuple, Config] = {}
        self.timings: dict[tuple, dict[Config, float]] = {}
        self.best_config: Config | None = None
        functools.update_wrapper(self, self.kernel.fn)
        unknown = [k for k in self.key + self.reset_to_zero + self.restore_value if k not in self.kernel.source.params]
        if unknown:
            raise KdslError(f"autotune names {unknown}, which are not parameters of '{self.kernel.source.name}'")

    def __getitem__(self, grid: Any) -> Callable[..., None]:
        return functools.partial(self.run, grid=grid)

    def run(self, *args: Any, grid: Any, **kwargs: Any) -> None:
        named = _by_name(self.kernel, args, kwargs)
        tuned = {k for c in self.configs for k in c.kwargs}
        clash = sorted(tuned & set(kwargs))
        if clash:
            raise LaunchError(f"'{self.kernel.source.name}': {clash} are set by the autotune configs; "
                              "do not pass them at launch")
        key = self._key(named, kwargs.get("target"))
        config = self.cache.get(key)
        if config is None:
            config = self._tuned_before(key)
        if config is None:
            config = self._tune(key, args, grid, kwargs, named)
            cache.store(self._disk_key(key), repr(config))
        self.cache[key] = config
        self.best_config = config
        self._launch(config, args, grid, kwargs)

    def _key(self, named: dict[str, Any], target: str | None) -> tuple:
        missing = [k for k in self.key if k not in named]
        if missing:
            raise LaunchError(f"'{self.kernel.source.name}': the autotune key {missing} is not among the arguments")
        dtypes = tuple(str(getattr(v, "dtype", type(v).__name__)) for v in named.values())
        return (*(named[k] for k in self.key), dtypes, target)

    def _disk_key(self, key: tuple) -> str:
        from kdsl.backend.cpu.jit import host_identity
        from kdsl.backend.cpu.threads import get_num_threads

        source = self.kernel.source
        machine = f"{host_identity()} threads={get_num_threads()}"
        return cache.key("autotune", source.file, ast.dump(source.tree), repr(self.configs), repr(key), machine)

    def _tuned_before(self, key: tuple) -> Config | None:
        """The config another process chose for `key`, from the on-disk cache."""
        chosen = cache.load(self._disk_key(key))
        return next((c for c in self.configs if repr(c) == chosen), None)

    def _candidates(self, named: dict[str, Any]) -> list[Config]:
        configs = self.configs
        early = self.prune.get("early_config_prune")
        if early is not None:
            configs = list(early(configs, named))
        model, top_k = self.prune.get("perf_model"), self.prune.get("top_k")
        if model is not None and top_k is not None:
            top = int(top_k * len(configs)) if isinstance(top_k, float) and top_k <= 1 else int(top_k)
            configs = sorted(configs, key=lambda c: model(**named, **c.all_kwargs()))[:max(top, 1)]
        if not configs:
            raise LaunchError(f"'{self.kernel.source.name}': pruning left no autotune config")
        return configs

    def _tune(self, key: tuple, args: tuple, grid: Any, kwargs: dict[str, Any], named: dict[str, Any]) -> Config:
        saved = {n: _snapshot(named[n]) for n in self.restore_value}
        timings: dict[Config, float] = {}
        candidates = self._candidates(named)
        clock = _clock(self.kernel, args, kwargs)
        progress = _Progress(f"autotuning {self.kernel.source.name}", len(candidates))
        for config in candidates:
            def launch_once(config: Config = config) -> None:
                self._reset(named)
                self._launch(config, args, grid, kwargs)

            progress.step(config)
            timings[config] = do_bench(launch_once, self.warmup, self.rep, time_ms=clock)
        progress.done()
        for name, value in saved.items():
            named[name][...] = value
        self._reset(named)
        best = min(timings, key=timings.__getitem__)
        self.timings[key] = timings
        return best

    def _reset(self, named: dict[str, Any]) -> None:
        """Zero the `reset_to_zero` arrays, before each timed run and before the real launch after tuning."""
        for name in self.reset_to_zero:
            named[name][...] = 0

    def _launch(self, config: Config, args: tuple, grid: Any, kwargs: dict[str, Any]) -> None:
        if config.pre_hook is not None:
            config.pre_hook({**_by_name(self.kernel, args, kwargs), **config.kwargs})
        self.fn.run(*args, grid=grid, **{**kwargs, **config.all_kwargs()})


def autotune(configs: list[Config], key: list[str], prune_configs_by: dict[str, Callable] | None = None,
             reset_to_zero: Iterable[str] = (), restore_value: Iterable[str] = (), warmup: float = 25,
             rep: float = 100) -> Callable[[Any], Autotuner]:
    """Decorator, as Triton's `triton.autotune`: on the first launch with a new value of the `key`
    arguments (and of the argument dtypes and the target), time every config and launch the
    fastest from then on. A config's constexprs must not also be passed at launch.

    `prune_configs_by` may hold "early_config_prune" (a function of the configs and the arguments
    by name, returning the configs to time) and "perf_model" with "top_k" (only the `top_k`
    configs the model, called with the arguments and a config's values by keyword, ranks
    fastest are timed; a float of at most 1 is a fraction). The arrays named in `reset_to_zero`
    are zeroed before each timed run and before the real launch; those in `restore_value` get
    their contents back after tuning. Each config runs for about `warmup` ms untimed, then
    `rep` ms timed (`kdsl.testing.do_bench`). The choice is kept in memory (the returned
    object's `best_config`) and in the on-disk cache, so another process does not tune again.
    """
    return lambda fn: Autotuner(fn, configs, key, prune_configs_by, reset_to_zero, restore_value, warmup, rep)


def heuristics(values: dict[str, Callable[[dict[str, Any]], Any]]) -> Callable[[Any], Heuristics]:
    """Decorator, as Triton's `triton.heuristics`: before each launch, compute each constexpr
    argument named in `values` by its function of a dict of every argument by name; a function
    that raises is a `LaunchError`."""
    return lambda fn: Heuristics(fn, values)
