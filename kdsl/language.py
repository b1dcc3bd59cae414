"""The `kl.*` language: dtypes, `constexpr`, and the builtins a kernel may call.

The builtins here are markers: the frontend recognises each by identity and
builds IR for it (`kdsl.frontend.builtins`). Called while a kernel is being
interpreted (`target="interpret"`) they run through the same handlers on numpy;
called anywhere else they raise a `KdslError` that says so.
"""
from __future__ import annotations

from typing import Any, Callable

from kdsl.errors import KdslError
from kdsl.interpreter.context import active_session
from kdsl.ir import types as _t
from kdsl.ir.types import ScalarType as dtype

int1 = _t.i1
int8 = _t.i8
int16 = _t.i16
int32 = _t.i32
int64 = _t.i64
uint8 = _t.u8
uint16 = _t.u16
uint32 = _t.u32
uint64 = _t.u64
float16 = _t.f16
bfloat16 = _t.bf16
float32 = _t.f32
float64 = _t.f64
float8e4nv = _t.fp8e4nv
float8e5 = _t.fp8e5


class constexpr:
    """Annotation for kernel parameters that are compile-time constants (also `kdsl.constexpr`).

    `def k(x_ptr, BLOCK: kl.constexpr)`: each distinct value of BLOCK is its own
    specialization of the kernel.
    """

    def __init__(self, value: Any = None):
        self.value = value

    def __repr__(self) -> str:
        return f"constexpr({self.value!r})"


BUILTINS: dict[Callable, str] = {}


def _builtin(fn: Callable) -> Callable:
    """Mark `fn` as a kernel builtin; calling it from plain Python is an error."""

    def outside_kernel(*args: Any, **kwargs: Any) -> Any:
        session = active_session()
        if session is None:
            raise KdslError(f"kl.{fn.__name__} can only be called inside a @kdsl.kernel function")
        return session.call_builtin(fn.__name__, args, kwargs)

    outside_kernel.__name__ = fn.__name__
    outside_kernel.__qualname__ = fn.__name__
    outside_kernel.__doc__ = fn.__doc__
    outside_kernel.__wrapped__ = fn
    BUILTINS[outside_kernel] = fn.__name__
    return outside_kernel


@_builtin
def program_id(axis):
    """The index of this program along grid axis 0, 1 or 2 (0 for an axis the grid lacks)."""


@_builtin
def num_programs(axis):
    """The number of programs along grid axis 0, 1 or 2 (1 for an axis the grid lacks)."""


@_builtin
def arange(start, end):
    """The block [start, start+1, ..., end-1] of int32; end - start must be a power of two."""


@_builtin
def zeros(shape, dtype):
    """A block of `shape` (compile-time ints: a tuple, or one int) filled with zeros of `dtype`."""


@_builtin
def full(shape, value, dtype):
    """A block of `shape` filled with `value` (a number, or a runtime value broadcast to `shape`)
    converted to `dtype`."""


@_builtin
def zeros_like(input):
    """A block of zeros with the shape and dtype of `input`."""


@_builtin
def full_like(input, value):
    """A block filled with `value`, with the shape and dtype of `input`."""


@_builtin
def load(pointer, mask=None, other=None):
    """Read the elements `pointer` (a pointer, or a block of pointers) points to.

    `mask` (a boolean scalar or block) and `pointer` are broadcast to one shape; where `mask` is
    false nothing is read and the element is `other`, converted to the pointee type (undefined
    when `other` is None). `other` needs a `mask`.
    """


@_builtin
def store(pointer, value, mask=None):
    """Write `value`, converted to the pointee type and broadcast to `pointer`'s shape, where `mask`
    (broadcast likewise) is true; masked-off elements write nothing."""


@_builtin
def where(condition, x, y):
    """Elementwise `x` where `condition` is true, else `y` (both evaluated)."""


@_builtin
def minimum(x, y):
    """Elementwise minimum; for floats a NaN operand yields the other operand."""


@_builtin
def maximum(x, y):
    """Elementwise maximum; for floats a NaN operand yields the other operand."""


@_builtin
def exp(x):
    """Elementwise `e**x` of a floating-point `x` (not fp8)."""


@_builtin
def log(x):
    """Elementwise natural logarithm of a floating-point `x` (not fp8)."""


@_builtin
def sqrt(x):
    """Elementwise square root of a floating-point `x` (not fp8)."""


@_builtin
def abs(x):
    """Elementwise absolute value of a signed integer or float; unsigned integers are returned as they are."""


@_builtin
def sum(input, axis=None, keep_dims=False, dtype=None):
    """Sum along `axis` (all axes when None), in `dtype` when given. Otherwise, as in Triton,
    integers narrower than 32 bits sum as int32 (unsigned and bool as uint32) and floats keep
    their type: every partial sum rounds to it."""


@_builtin
def max(input, axis=None, keep_dims=False):
    """Maximum along `axis` (all axes when None); types narrower than 32 bits give float32 or
    int32, as in Triton."""


@_builtin
def min(input, axis=None, keep_dims=False):
    """Minimum along `axis` (all axes when None); types narrower than 32 bits give float32 or
    int32, as in Triton."""


@_builtin
def cdiv(x, div):
    """Ceiling division of integers, `(x + div - 1) // div`; computed at compile time when both are
    compile-time values."""


@_builtin
def static_range(*args):
    """The iterable of a `for` loop with compile-time integer bounds, as `range` takes them: the loop
    is unrolled, its body compiled once per iteration with the loop variable a compile-time int."""


@_builtin
def range(arg1, arg2=None, step=None, num_stages=None, loop_unroll_factor=None, disallow_acc_multi_buffer=False,
          flatten=False, warp_specialize=False, disable_licm=False):
    """The iterable of a runtime `for` loop, as `range(arg1, arg2, step)` is. Triton's scheduling
    hints are accepted for compatibility and must be compile-time values; no target reads them
    (the GPU targets pipeline K loops by the launch option `num_stages`)."""


@_builtin
def clamp(x, min, max):
    """Elementwise `x` limited to [min, max] (undefined when min > max, as in Triton)."""


@_builtin
def sigmoid(x):
    """Elementwise `1 / (1 + exp(-x))` of a floating-point `x`."""


@_builtin
def fdiv(x, y, ieee_rounding=False):
    """`x / y` on floating-point values. Every target rounds it as IEEE division
    does, so `ieee_rounding` changes nothing."""


@_builtin
def softmax(x, dim=None, keep_dims=False, ieee_rounding=False):
    """`exp(x - max) / sum(exp(x - max))` of a floating-point `x` along `dim` (0 when None), as
    Triton's softmax; `ieee_rounding` changes nothing (see `fdiv`)."""


@_builtin
def expand_dims(input, axis):
    """`input` with a new dimension of size 1 at `axis` (or at each axis of a tuple)."""


@_builtin
def broadcast_to(input, *shape):
    """`input` broadcast to `shape` with numpy's rules."""


@_builtin
def broadcast(input, other):
    """Both values broadcast to their common shape."""


@_builtin
def static_assert(cond, msg=""):
    """A compile-time check: compilation fails with `msg` when `cond` is false."""


@_builtin
def static_print(*values):
    """Print compile-time values (and the types of runtime ones) while the kernel compiles."""


@_builtin
def device_print(prefix, *args, hex=False):
    """Print `args` (scalars or blocks) at run time, one line per element, as Triton does:
    "pid (x, y, z) idx (i, j) prefix: value". `prefix` is a string constant; with
    `hex=True` integers print in hexadecimal and floats in hexadecimal floating point.
    The CPU writes through Python's `sys.stdout`, in program order; the GPU targets write
    the same lines after the launch, sorted by program, in program order within each."""


@_builtin
def device_assert(cond, msg="", mask=None):
    """Check `cond` (a boolean scalar or block) at run time, where `mask` is true when given;
    a false element stops the launch with `kdsl.DeviceAssertionError`. A kernel's
    `assert cond, msg` is this call.
    Always checked, on every target (Triton checks only with debug=True)."""


@_builtin
def multiple_of(input, values):
    """`input` (an integer scalar or block), with the promise that along each dimension the first
    element of each run is a multiple of `values` (one int, or one per dimension). The GPU's axis
    analysis takes the promise as a fact, unchecked."""


@_builtin
def max_contiguous(input, values):
    """`input` (an integer scalar or block), with the promise that along each dimension its values
    come in runs of `values` consecutive integers (one int, or one per dimension). The GPU's axis
    analysis takes the promise as a fact, unchecked."""


@_builtin
def exp2(x):
    """Elementwise `2**x` of a floating-point `x` (not fp8)."""


@_builtin
def log2(x):
    """Elementwise base-2 logarithm of a floating-point `x` (not fp8)."""


@_builtin
def rsqrt(x):
    """Elementwise `1 / sqrt(x)` of a floating-point `x` (not fp8)."""


@_builtin
def sin(x):
    """Elementwise sine of a floating-point `x` (not fp8), in radians."""


@_builtin
def cos(x):
    """Elementwise cosine of a floating-point `x` (not fp8), in radians."""


@_builtin
def erf(x):
    """Elementwise error function of a floating-point `x` (not fp8)."""


@_builtin
def floor(x):
    """Elementwise largest integral value not greater than `x`, as a float of `x`'s type (not fp8)."""


@_builtin
def ceil(x):
    """Elementwise smallest integral value not less than `x`, as a float of `x`'s type (not fp8)."""


@_builtin
def fma(x, y, z):
    """Elementwise x * y + z rounded once (16-bit floats are computed in float32 and rounded back)."""


@_builtin
def umulhi(x, y):
    """Elementwise high half of the double-width product of two integers (signed for signed types)."""


@_builtin
def dot(a, b, acc=None, input_precision=None, out_dtype=float32):
    """The matrix product of the 2D blocks `a` (M, K) and `b` (K, N), plus `acc` (M, N) when given;
    with 3D blocks `a` (B, M, K), `b` (B, K, N) and `acc` (B, M, N), one product per batch index.

    Operands are float8e4nv, float8e5, fp16, bf16, fp32, fp64 or int8; two float types promote
    to one (fp16 with fp32 gives fp32, the two fp8 formats give fp16), and int8 multiplies only
    int8. The result type: int32 for int8 operands, fp64 for fp64, fp32 for fp32 and bf16, and
    `out_dtype` (fp32 or fp16) for fp16 and fp8; when `acc` is given its dtype is the result
    dtype. Products accumulate in the result type.
    `input_precision` is None, "tf32", "tf32x3" or "ieee": the GPU's choice for
    fp32 operands; the CPU and the interpreter compute exact fp32 whatever is asked.
    Unlike Triton (which needs every dimension >= 16), the CPU and the interpreter
    take any power of two, 1 included.
    """


@_builtin
def reshape(input, *shape, can_reorder=False):
    """`input`'s elements, in row-major order, as a block of `shape` (same element count).

    `shape` is given as arguments or as one tuple. `can_reorder` is accepted for
    Triton compatibility; kdsl always keeps the row-major order.
    """


@_builtin
def view(input, *shape):
    """As `reshape` (Triton's older name)."""


@_builtin
def ravel(x, can_reorder=False):
    """`x` as a 1D block, row-major."""


@_builtin
def trans(input, *dims):
    """`input` with its dimensions permuted: result dimension i is `input`'s dimension dims[i].

    Without `dims`, a 2D block is transposed. `dims` may also be one tuple.
    """


@_builtin
def permute(input, *dims):
    """`input` with its dimensions permuted: result dimension i is `input`'s dimension dims[i]."""


@_builtin
def join(a, b):
    """`a` and `b` (broadcast to one shape, of one dtype) side by side along a new minor dimension of size 2."""


@_builtin
def split(a):
    """The two halves of `a` along its last dimension, which must have size 2: `x0, x1 = kl.split(a)`."""


@_builtin
def atomic_add(pointer, val, mask=None, sem=None, scope=None):
    """Atomically add `val` at each `pointer` where `mask` holds; returns the values before.

    int32, int64, uint32, uint64, fp16, fp32 and fp64 (integers wrap). Duplicate
    addresses in one block all take effect. Masked-off lanes touch no memory and
    return an undefined value. `sem` is None, "acquire", "release", "acq_rel"
    (the default) or "relaxed"; `scope` is None, "gpu" (the default), "cta" or "sys".
    """


@_builtin
def atomic_max(pointer, val, mask=None, sem=None, scope=None):
    """Atomically store max(old, `val`) at each `pointer` where `mask` holds; returns the old values.

    Integers and fp16/fp32/fp64. Floats compare as in Triton's implementation, by
    their bits (signed max for a non-negative `val`, unsigned min for a negative
    one): exact on numbers, with -0.0 < +0.0; NaNs order by their bit patterns.
    Masked-off lanes touch no memory and return an undefined value.
    """


@_builtin
def atomic_min(pointer, val, mask=None, sem=None, scope=None):
    """Atomically store min(old, `val`) at each `pointer` where `mask` holds; returns the old values.

    Integers and fp16/fp32/fp64, floats compared as `atomic_max` describes.
    Masked-off lanes touch no memory and return an undefined value.
    """


@_builtin
def atomic_and(pointer, val, mask=None, sem=None, scope=None):
    """Atomically store old & `val` (integers) where `mask` holds; returns the old values."""


@_builtin
def atomic_or(pointer, val, mask=None, sem=None, scope=None):
    """Atomically store old | `val` (integers) where `mask` holds; returns the old values."""


@_builtin
def atomic_xor(pointer, val, mask=None, sem=None, scope=None):
    """Atomically store old ^ `val` (integers) where `mask` holds; returns the old values."""


@_builtin
def atomic_xchg(pointer, val, mask=None, sem=None, scope=None):
    """Atomically store `val` where `mask` holds (integers, fp16/fp32/fp64); returns the old values."""


@_builtin
def atomic_cas(pointer, cmp, val, sem=None, scope=None):
    """Atomically store `val` where the old value equals `cmp` (integers); returns the old values.

    Every lane takes part (there is no mask, as in Triton).
    """


@_builtin
def argmax(input, axis, tie_break_left=True, keep_dims=False):
    """The int32 index of the largest element along `axis` (None: the flat index over the block).

    Ties go to the lowest index (the highest with `tie_break_left=False`). NaN is
    ignored, as `kl.max` ignores it: any number beats a NaN, and a slice that is
    all NaN gives 0.
    """


@_builtin
def argmin(input, axis, tie_break_left=True, keep_dims=False):
    """The int32 index of the smallest element along `axis`; ties and NaN as in `argmax`."""


@_builtin
def reduce(input, axis, combine_fn, keep_dims=False):
    """Fold `input` along `axis` (all axes when None) with `combine_fn`, a `@kdsl.kernel` function.

    For a block, `combine_fn(a, b)` returns the combination of two scalars; for a
    tuple of k blocks, it takes 2k arguments (k accumulated values, then k new
    ones) and returns k values, and `reduce` returns a tuple. The fold runs in
    index order: acc = combine_fn(acc, x[i]). Results keep the inputs' dtypes.
    """


@_builtin
def associative_scan(input, axis, combine_fn, reverse=False):
    """The inclusive scan of `input` along `axis` with `combine_fn` (as in `reduce`).

    Result i is the fold of elements 0..i (with `reverse`, of elements i..n-1,
    combined from the last one down).
    """


@_builtin
def cumsum(input, axis=0, reverse=False):
    """The inclusive running sum along `axis`; integers narrower than 32 bits sum as int32 (uint32)."""


@_builtin
def cumprod(input, axis=0, reverse=False):
    """The inclusive running product along `axis`, in the input's dtype."""
