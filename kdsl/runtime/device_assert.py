"""What a failed `kl.device_assert` (or `assert`) reports, the same on every target.

A compiled kernel keeps one `AssertSite` per assertion; when one fails, the
target's runtime learns the site, the program id and the row-major index of the
first false element, and `AssertSite.error` builds the `DeviceAssertionError`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kdsl.errors import DeviceAssertionError, Loc


@dataclass(frozen=True)
class AssertSite:
    """Where an assertion is, its message and its condition's shape (() for a scalar)."""

    loc: Loc
    message: str
    shape: tuple[int, ...]

    def error(self, kernel: str, pid: tuple[int, int, int], index: int) -> DeviceAssertionError:
        """The error for row-major element `index` (ignored for a scalar condition) failing in program `pid`."""
        coords = tuple(int(i) for i in np.unravel_index(index, self.shape)) if self.shape else None
        return DeviceAssertionError(kernel, self.loc, tuple(int(p) for p in pid), coords,  # type: ignore[arg-type]
                                    self.message)
