"""torch integration: register functions that launch kdsl kernels as torch operators.

`custom_op` is `torch.library.custom_op` (same signature; the result has `register_fake`,
`register_autograd`, ...) for a function that takes and returns tensors and launches kdsl
kernels on them. As an operator the function is opaque to `torch.compile`, which then calls
it with real tensors instead of tracing kdsl's launch code; `register_fake` tells the compiler
the shapes and dtypes of what it returns.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

from kdsl.errors import KdslError
from kdsl.runtime.kernel import Kernel


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise KdslError("kdsl.torch needs torch (pip install torch)") from None
    return torch


def custom_op(name: str, fn: Callable[..., Any] | None = None, /, *, mutates_args: str | Iterable[str],
              device_types: str | Sequence[str] | None = None, schema: str | None = None,
              tags: Any = None) -> Any:
    """Register `fn` as the torch operator `name` ("namespace::op"), as `torch.library.custom_op`."""
    torch = _torch()

    def register(function: Callable[..., Any]) -> Any:
        if isinstance(function, Kernel) or isinstance(getattr(function, "kernel", None), Kernel):
            raise KdslError(f"custom_op {name!r} wraps a Python function that launches kdsl kernels, not a "
                            "kernel: write a function taking tensors that launches kernel[grid](...) and "
                            "returns its outputs")
        return torch.library.custom_op(name, function, mutates_args=mutates_args, device_types=device_types,
                                       schema=schema, tags=tags)

    return register if fn is None else register(fn)
