"""cp.async copies in flight (PTX ISA §9.7.9.25.3): each thread's copies join its open group,
`cp.async.commit_group` closes the group, and `cp.async.wait_group N` waits until at most the N
newest of the thread's committed groups are pending (`wait_all`: commit, then wait for all).

The simulator reads a copy's source when the copy is issued and writes its destination as late
as the rules allow: when a wait of its thread needs it. So a kernel that reads a copy's bytes
before waiting for them (a wait_group that counts wrong, a missing wait) sees the destination's
old contents, as it may on the hardware, rather than the copy.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class _Copy:
    lanes: np.ndarray  # threads (indices into the batch) with this copy still pending
    groups: np.ndarray  # per lane: the group the copy joined (its thread's committed count at issue)
    buffer: np.ndarray
    offsets: np.ndarray  # per lane: the destination's byte offsets in `buffer` (lanes, cp_size)
    data: np.ndarray  # per lane: the bytes read (lanes, cp_size)


@dataclass
class AsyncCopies:
    """The pending copies of a batch of `n` threads."""

    n: int
    committed: np.ndarray = field(init=False)
    pending: list[_Copy] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.committed = np.zeros(self.n, np.int64)

    def issue(self, lanes: np.ndarray, buffer: np.ndarray, offsets: np.ndarray, data: np.ndarray) -> None:
        if lanes.size:
            self.pending.append(_Copy(lanes, self.committed[lanes], buffer, offsets, data))

    def commit(self, lanes: np.ndarray) -> None:
        self.committed[lanes] += 1

    def wait(self, lanes: np.ndarray, newest_pending: int) -> None:
        """Land every copy of `lanes` except those of their `newest_pending` newest committed groups
        and of their open group."""
        waiting = np.zeros(self.n, bool)
        waiting[lanes] = True
        still = []
        for copy in self.pending:
            lands = waiting[copy.lanes] & (copy.groups < self.committed[copy.lanes] - newest_pending)
            if lands.any():
                copy.buffer[copy.offsets[lands]] = copy.data[lands]
                keep = ~lands
                copy = _Copy(copy.lanes[keep], copy.groups[keep], copy.buffer, copy.offsets[keep], copy.data[keep])
            if copy.lanes.size:
                still.append(copy)
        self.pending = still
