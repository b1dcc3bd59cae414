"""The vector add of API.md, run on the CPU and checked against numpy."""
import time

import numpy as np

import kdsl
import kdsl.language as kl


@kdsl.kernel
def add(x_ptr, y_ptr, out_ptr, n, BLOCK: kl.constexpr):
    pid = kl.program_id(0)
    offs = pid * BLOCK + kl.arange(0, BLOCK)
    mask = offs < n
    x = kl.load(x_ptr + offs, mask=mask)
    y = kl.load(y_ptr + offs, mask=mask, other=0.0)
    kl.store(out_ptr + offs, x + y, mask=mask)


def main() -> None:
    rng = np.random.default_rng(0)
    x = rng.random(1_000_003, dtype=np.float32)
    y = rng.random(x.size, dtype=np.float32)
    out = np.full_like(x, np.nan)
    start = time.perf_counter()
    add[(kdsl.cdiv(x.size, 1024),)](x, y, out, x.size, BLOCK=1024)
    first = time.perf_counter() - start
    np.testing.assert_array_equal(out, x + y)
    start = time.perf_counter()
    add[(kdsl.cdiv(x.size, 1024),)](x, y, out, x.size, BLOCK=1024)
    again = time.perf_counter() - start
    print(f"vector add of {x.size} float32 elements matches numpy "
          f"(first launch with compilation {first * 1e3:.1f} ms, cached launch {again * 1e3:.2f} ms)")
    print(add.compile(x, y, out, x.size, BLOCK=1024).asm["ir"])


if __name__ == "__main__":
    main()
