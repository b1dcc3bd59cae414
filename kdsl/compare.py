"""`compare_targets`: one launch on several targets, differences reported where they start.

Each target runs the launch on copies of the array arguments that keep their memory layout
(strides passed to the kernel keep their meaning), so no run sees another's writes. Every
array is then compared with the first target's, element by element, within a tolerance set
by its dtype; NaNs match NaNs. For the first element that differs, the report names the
store that wrote it: the source line of the last store to that element in an interpreted
run of the same launch (the `interpret` target's own run where it is among the targets).
"""
from __future__ import annotations

import linecache
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from kdsl.runtime.arrays import memory_span

# Relative and absolute tolerance by numpy dtype name; integer and bool arrays must match exactly.
TOLERANCE = {"float16": 1e-3, "bfloat16": 1e-2, "float8_e4m3fn": 0.125, "float8_e5m2": 0.25,
             "float32": 1e-5, "float64": 1e-12}


@dataclass
class Difference:
    """The first element of an array argument on which two targets disagree."""

    argument: str
    index: tuple[int, ...]
    values: dict[str, Any]
    store: str | None  # "file:line: source" of the store that wrote the element, as interpreted

    def __str__(self) -> str:
        values = ", ".join(f"{target} {value!r}" for target, value in self.values.items())
        wrote = f"; written by {self.store}" if self.store else "; no store wrote it in the interpreted run"
        return f"'{self.argument}'{list(self.index)}: {values}{wrote}"


@dataclass
class Comparison:
    """What `compare_targets` found: per array argument, the first difference, if any."""

    targets: tuple[str, ...]
    differences: list[Difference] = field(default_factory=list)
    mismatched: dict[str, int] = field(default_factory=dict)  # argument -> elements that differ

    @property
    def ok(self) -> bool:
        """Whether every target agrees with the first on every array."""
        return not self.differences

    @property
    def first(self) -> Difference | None:
        """The first difference found, or None."""
        return self.differences[0] if self.differences else None

    def __str__(self) -> str:
        if self.ok:
            return f"{', '.join(self.targets)} agree"
        lines = [f"{', '.join(self.targets)} differ:"]
        lines += [f"  {d} ({self.mismatched[d.argument]} elements differ)" for d in self.differences]
        return "\n".join(lines)


def compare_targets(kernel: Any, grid: Any, *args: Any, targets: Sequence[str] = ("interpret", "cpu", "sim"),
                    **meta: Any) -> Comparison:
    """Launch `kernel[grid](*args, **meta)` on each of `targets` and compare the results.

    Each target runs on its own copies of the array arguments, which keep their strides. Every
    array is then compared with the first target's, element by element, within a tolerance
    set by its dtype (integers and bools exactly; NaN matches NaN). The `Comparison` returned
    gives, per array, the first element that differs, each target's value there and the source
    line of the store that wrote it in an interpreted run of the same launch.
    """
    from kdsl.interpreter.launch import recording_writes

    targets = tuple(targets)
    if len(targets) < 2:
        raise ValueError("compare_targets needs at least two targets")
    runs: dict[str, list[Any]] = {}
    log = None
    for target in targets:
        runs[target] = [_copy(a) for a in args]
        if target == "interpret":
            with recording_writes() as log:
                kernel[grid](*runs[target], target=target, **meta)
        else:
            kernel[grid](*runs[target], target=target, **meta)
    names = kernel.source.params
    comparison = Comparison(targets)
    for position, arg in enumerate(args):
        if not isinstance(arg, np.ndarray):
            continue
        reference = runs[targets[0]][position]
        for target in targets[1:]:
            differs = _differs(reference, runs[target][position])
            if differs.any():
                index = tuple(int(i) for i in np.argwhere(differs)[0])
                name = names[position] if position < len(names) else f"argument {position}"
                if log is None:
                    interpreted = [_copy(a) for a in args]
                    with recording_writes() as log:
                        kernel[grid](*interpreted, target="interpret", **meta)
                    runs.setdefault("interpret", interpreted)
                comparison.differences.append(Difference(
                    name, index, {t: runs[t][position][index].item() for t in targets},
                    _store_line(log, runs["interpret"][position], index)))
                comparison.mismatched[name] = int(differs.sum())
                break
    return comparison


def _copy(value: Any) -> Any:
    """A numpy array's copy with the same strides (over a copy of the bytes it spans); other
    arguments as they are."""
    if not isinstance(value, np.ndarray):
        return value
    span, offset = memory_span(value)
    return np.ndarray(value.shape, value.dtype, buffer=span.copy(), offset=offset, strides=value.strides)


def _differs(expected: np.ndarray, got: np.ndarray) -> np.ndarray:
    tolerance = TOLERANCE.get(expected.dtype.name)
    if tolerance is None:
        return expected != got
    a, b = expected.astype(np.float64), got.astype(np.float64)
    with np.errstate(invalid="ignore"):
        close = np.isclose(a, b, rtol=tolerance, atol=tolerance)
    return ~(close | (np.isnan(a) & np.isnan(b)))


def _store_line(log: Any, array: np.ndarray, index: tuple[int, ...]) -> str | None:
    address = array.__array_interface__["data"][0] + sum(i * s for i, s in zip(index, array.strides))
    writer = log.writer(address)
    if writer is None or writer[0] is None:
        return None
    file, line = writer
    return f"{file}:{line}: {linecache.getline(file, line).strip()}"
