"""kdsl.sim: a PTX simulator that runs PTX text on the CPU, vectorised over threads with numpy.

`launch_ptx(ptx, entry, grid, block, args)` runs a kernel once; `load_module`
parses once for many launches (`Module.launch` returns instruction counts);
`DeviceMemory` keeps buffers across launches. Arguments are numpy arrays
(copied in and back; strided arrays pass their own memory span), `None` (a
null pointer) or `(ptx_type, value)`.

Execution model (see `cta.py`): CTAs that cannot wait on one another (no global
atomics, no volatile or acquire loads) run in batches of up to `BATCH_THREADS`
threads, the others one after another; every register is an array over the
threads of the batch, each thread has its own PC and
the lowest PC runs next under an active mask; CTA barriers hold arriving
threads until every live thread waits; warp-synchronous instructions
(`shfl.sync`, `vote.sync`, `match.sync`, `redux.sync`, `bar.warp.sync`) hold the
lanes that arrive first until every live lane of the warp is there, as the
hardware converges the lanes a `.sync` names, and then read the other lanes'
registers directly.

cp.async copies land as late as their waits allow (`async_copies`).

Not simulated: memory-ordering effects (fences are no-ops), clusters/distributed
shared memory, wgmma/TMA/mbarrier, textures, barrier reductions, named-barrier thread counts (treated as CTA-wide).
Anything unimplemented raises `UnsupportedInstruction` when it executes.
"""
from kdsl.sim.errors import PtxParseError, UnsupportedInstruction
from kdsl.sim.memory import DeviceMemory
from kdsl.sim.module import Module, launch_ptx, load_module

__all__ = ["DeviceMemory", "Module", "PtxParseError", "UnsupportedInstruction", "launch_ptx", "load_module"]
