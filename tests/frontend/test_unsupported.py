"""The unsupported-construct catalogue: every Python construct a kernel cannot use raises a
CompilationError that quotes the line, puts a caret under it, says what is wrong and what to
do instead. `break`/`continue` stay unsupported, as in Triton."""
import re

import numpy as np
import pytest

import kdsl
import kdsl.language as kl

CAPTURED = np.zeros(4, np.float32)


def plain_helper(x):
    return x + 1


@kdsl.kernel
def list_comprehension(x_ptr):
    vals = [i for i in range(4)]
    kl.store(x_ptr, vals[0])


@kdsl.kernel
def dict_comprehension(x_ptr):
    vals = {i: i for i in range(4)}
    kl.store(x_ptr, vals[0])


@kdsl.kernel
def set_comprehension(x_ptr):
    vals = {i for i in range(4)}
    kl.store(x_ptr, 1.0)


@kdsl.kernel
def generator_expression(x_ptr):
    vals = (i for i in range(4))
    kl.store(x_ptr, 1.0)


@kdsl.kernel
def dict_literal(x_ptr):
    vals = {"a": 1}
    kl.store(x_ptr, 1.0)


@kdsl.kernel
def uses_try(x_ptr):
    try:
        kl.store(x_ptr, 1.0)
    except Exception:
        pass


@kdsl.kernel
def uses_with(x_ptr):
    with open("f"):
        kl.store(x_ptr, 1.0)


@kdsl.kernel
def uses_raise(x_ptr, n):
    if n < 0:
        raise ValueError("negative")
    kl.store(x_ptr, 1.0)


@kdsl.kernel
def uses_lambda(x_ptr):
    f = lambda v: v + 1  # noqa: E731
    kl.store(x_ptr, 1.0)


@kdsl.kernel
def nested_def(x_ptr):
    def inner(v):
        return v + 1
    kl.store(x_ptr, 1.0)


@kdsl.kernel
def closure_over_runtime_value(x_ptr):
    x = kl.load(x_ptr)

    def add_x(v):
        return v + x
    kl.store(x_ptr, add_x(1.0))


@kdsl.kernel
def class_def(x_ptr):
    class Point:
        pass
    kl.store(x_ptr, 1.0)


@kdsl.kernel
def uses_yield(x_ptr):
    yield kl.load(x_ptr)


@kdsl.kernel
def uses_global(x_ptr):
    global CAPTURED
    kl.store(x_ptr, 1.0)


def _make_nonlocal_kernel():
    count = 0

    @kdsl.kernel
    def uses_nonlocal(x_ptr):
        nonlocal count
        kl.store(x_ptr, 1.0)
    return uses_nonlocal


uses_nonlocal = _make_nonlocal_kernel()


def _make_array_closure():
    table = np.arange(4, dtype=np.float32)

    @kdsl.kernel
    def closure_over_array(x_ptr):
        kl.store(x_ptr, table)
    return closure_over_array


closure_over_array = _make_array_closure()


@kdsl.kernel
def uses_del(x_ptr):
    v = kl.load(x_ptr)
    del v
    kl.store(x_ptr, 1.0)


@kdsl.kernel
def uses_break(x_ptr, n):
    for i in range(n):
        if i > 3:
            break
    kl.store(x_ptr, 1.0)


@kdsl.kernel
def uses_continue(x_ptr, n):
    for i in range(n):
        if i > 3:
            continue
        kl.store(x_ptr + i, 1.0)


@kdsl.kernel
def uses_walrus(x_ptr):
    if (v := kl.load(x_ptr)) > 0:
        kl.store(x_ptr, v)


@kdsl.kernel
def uses_fstring(x_ptr):
    v = kl.load(x_ptr)
    kl.device_print(f"v={v}")


@kdsl.kernel
def starred_call(x_ptr):
    shape = (4, 4)
    kl.store(x_ptr, kl.sum(kl.zeros(*shape, kl.float32)))


@kdsl.kernel
def starred_assign(x_ptr):
    a, *rest = (1, 2, 3)
    kl.store(x_ptr, 1.0)


@kdsl.kernel
def kwargs_call(x_ptr):
    opts = (1,)
    kl.store(x_ptr, kl.load(x_ptr, **opts))


@kdsl.kernel
def runtime_arange(x_ptr, n):
    offs = kl.arange(0, n)
    kl.store(x_ptr + offs, 1.0)


@kdsl.kernel
def runtime_zeros(x_ptr, n):
    z = kl.zeros((n,), kl.float32)
    kl.store(x_ptr + kl.arange(0, 4), z)


@kdsl.kernel
def runtime_full(x_ptr, n):
    z = kl.full((4, n), 1.0, kl.float32)
    kl.store(x_ptr, kl.sum(z))


@kdsl.kernel
def runtime_reshape(x_ptr, n):
    z = kl.reshape(kl.load(x_ptr + kl.arange(0, 4)), 2, n)
    kl.store(x_ptr, kl.sum(z))


@kdsl.kernel
def calls_plain_function(x_ptr):
    kl.store(x_ptr, plain_helper(kl.load(x_ptr)))


@kdsl.kernel
def recursive(x):
    return recursive(x)


@kdsl.kernel
def calls_recursive(x_ptr):
    kl.store(x_ptr, recursive(kl.load(x_ptr)))


@kdsl.kernel
def block_of(x_ptr, N: kl.constexpr):
    return kl.load(x_ptr + kl.arange(0, N))


@kdsl.kernel
def runtime_constexpr_argument(x_ptr, n):
    kl.store(x_ptr, kl.sum(block_of(x_ptr, n)))


@kdsl.kernel
def step_slice(x_ptr):
    x = kl.load(x_ptr + kl.arange(0, 8))
    kl.store(x_ptr + kl.arange(0, 4), x[::2])


@kdsl.kernel
def runtime_index(x_ptr, n):
    x = kl.load(x_ptr + kl.arange(0, 8))
    kl.store(x_ptr, x[n])


@kdsl.kernel
def element_assignment(x_ptr):
    x = kl.load(x_ptr + kl.arange(0, 8))
    x[0] = 1.0
    kl.store(x_ptr + kl.arange(0, 8), x)


@kdsl.kernel
def element_update(x_ptr):
    x = kl.load(x_ptr + kl.arange(0, 8))
    x[0] += 1.0
    kl.store(x_ptr + kl.arange(0, 8), x)


@kdsl.kernel
def attribute_assignment(x_ptr):
    x = kl.load(x_ptr + kl.arange(0, 8))
    x.dtype = kl.float16
    kl.store(x_ptr + kl.arange(0, 8), x)


@kdsl.kernel
def uses_import(x_ptr):
    import math
    kl.store(x_ptr, math.pi)


@kdsl.kernel
def uses_match(x_ptr, n):
    match n:
        case 1:
            kl.store(x_ptr, 1.0)


@kdsl.kernel
def for_else(x_ptr, n):
    for i in range(n):
        kl.store(x_ptr + i, 1.0)
    else:
        kl.store(x_ptr, 2.0)


@kdsl.kernel
def while_else(x_ptr, n):
    i = 0
    while i < n:
        i += 1
    else:
        kl.store(x_ptr, 2.0)


@kdsl.kernel
def return_in_loop(x_ptr, n):
    for i in range(n):
        if i > 3:
            return
    kl.store(x_ptr, 1.0)


@kdsl.kernel
def for_over_list(x_ptr):
    for i in [1, 2]:
        kl.store(x_ptr + i, 1.0)


@kdsl.kernel
def block_if(x_ptr):
    x = kl.load(x_ptr + kl.arange(0, 8))
    if x > 0:
        kl.store(x_ptr, 1.0)


@kdsl.kernel
def block_and(x_ptr):
    x = kl.load(x_ptr + kl.arange(0, 8))
    kl.store(x_ptr + kl.arange(0, 8), x, mask=(x > 0) and (x < 1))


@kdsl.kernel
def matmul_operator(x_ptr):
    x = kl.load(x_ptr + kl.arange(0, 4)[:, None] * 4 + kl.arange(0, 4)[None, :])
    kl.store(x_ptr, kl.sum(x @ x))


@kdsl.kernel
def python_builtin(x_ptr):
    kl.store(x_ptr, len(kl.load(x_ptr + kl.arange(0, 4))))


@kdsl.kernel
def unknown_python_builtin(x_ptr):
    kl.store(x_ptr, sorted((3, 1))[0])


# (kernel, the quoted line, what is wrong, what to do instead)
CASES = [
    (list_comprehension, "vals = [i for i in range(4)]", "list comprehensions are not supported",
     "kl.static_range"),
    (dict_comprehension, "vals = {i: i for i in range(4)}", "dict comprehensions are not supported",
     "kl.static_range"),
    (set_comprehension, "vals = {i for i in range(4)}", "set comprehensions are not supported", "kl.static_range"),
    (generator_expression, "vals = (i for i in range(4))", "generator expressions are not supported",
     "kl.static_range"),
    (dict_literal, 'vals = {"a": 1}', "dicts are not supported", "use a tuple"),
    (uses_try, "try:", "`try` is not supported", "kl.device_assert"),
    (uses_with, 'with open("f"):', "`with` is not supported", "without the context manager"),
    (uses_raise, 'raise ValueError("negative")', "`raise` is not supported", "kl.device_assert"),
    (uses_lambda, "f = lambda v: v + 1", "lambdas are not supported", "@kdsl.kernel function"),
    (nested_def, "def inner(v):", "nested function definitions are not supported",
     "separate @kdsl.kernel function"),
    (closure_over_runtime_value, "def add_x(v):", "nested function definitions are not supported",
     "pass it the values it needs as arguments"),
    (class_def, "class Point:", "class definitions are not supported", "outside the kernel"),
    (uses_yield, "yield kl.load(x_ptr)", "`yield` is not supported", "kl.store"),
    (uses_global, "global CAPTURED", "`global` is not supported", "kl.store"),
    (uses_nonlocal, "nonlocal count", "`nonlocal` is not supported", "kl.store"),
    (closure_over_array, "kl.store(x_ptr, table)", r"'table' \(ndarray\) cannot be used", "pass arrays as arguments"),
    (uses_del, "del v", "`del` is not supported", "reassign"),
    (uses_break, "break", "`break` is not supported", "`while` loop"),
    (uses_continue, "continue", "`continue` is not supported", "under an `if`"),
    (uses_walrus, "if (v := kl.load(x_ptr)) > 0:", "`:=` is not supported", "on its own line"),
    (uses_fstring, 'kl.device_print(f"v={v}")', "f-strings are not supported", r'kl\.device_print\("x", x\)'),
    (starred_call, "kl.store(x_ptr, kl.sum(kl.zeros(*shape, kl.float32)))", "starred expressions are not supported",
     "one by one"),
    (starred_assign, "a, *rest = (1, 2, 3)", "starred expressions are not supported", "one by one"),
    (kwargs_call, "kl.store(x_ptr, kl.load(x_ptr, **opts))", r"\*\*kwargs in calls are not supported",
     "by name"),
    (runtime_arange, "offs = kl.arange(0, n)", "end is a runtime value", "kl.constexpr"),
    (runtime_zeros, "z = kl.zeros((n,), kl.float32)", "dimension 0 is a runtime value", "kl.constexpr"),
    (runtime_full, "z = kl.full((4, n), 1.0, kl.float32)", "dimension 1 is a runtime value", "kl.constexpr"),
    (runtime_reshape, "z = kl.reshape(kl.load(x_ptr + kl.arange(0, 4)), 2, n)", "dimension 1 is a runtime value",
     "kl.constexpr"),
    (calls_plain_function, "kl.store(x_ptr, plain_helper(kl.load(x_ptr)))",
     r"'plain_helper' \(function\) cannot be used", "decorate it with @kdsl.kernel"),
    (calls_recursive, "return recursive(x)", "recursion is not supported", "loop"),
    (runtime_constexpr_argument, "kl.store(x_ptr, kl.sum(block_of(x_ptr, n)))",
     "needs the compile-time constant 'N', got a runtime value", "kl.constexpr"),
    (step_slice, "kl.store(x_ptr + kl.arange(0, 4), x[::2])", "blocks can only be indexed with ':' and None",
     "kl.load"),
    (runtime_index, "kl.store(x_ptr, x[n])", "blocks can only be indexed with ':' and None", "kl.where"),
    (element_assignment, "x[0] = 1.0", "blocks are values", "kl.where"),
    (element_update, "x[0] += 1.0", "blocks are values", "kl.where"),
    (attribute_assignment, "x.dtype = kl.float16", "only names can be assigned to", r"x\.to\(dtype\)"),
    (uses_import, "import math", "`import` is not supported", "module level"),
    (uses_match, "match n:", "`match` is not supported", "if/elif"),
    (for_else, "for i in range(n):", "`for ... else` is not supported", "after the loop"),
    (while_else, "while i < n:", "`while ... else` is not supported", "after the loop"),
    (return_in_loop, "if i > 3:", "`return` inside a loop is not supported", "after the loop"),
    (for_over_list, "for i in [1, 2]:", "for loops must iterate over range", "kl.static_range"),
    (block_if, "if x > 0:", "`if` needs a scalar condition", "kl.where"),
    (block_and, "kl.store(x_ptr + kl.arange(0, 8), x, mask=(x > 0) and (x < 1))", "`and`/`or` work on scalars",
     "& and |"),
    (matmul_operator, "kl.store(x_ptr, kl.sum(x @ x))", "`@` is not an operator on blocks", r"kl.dot\(a, b\)"),
    (python_builtin, "kl.store(x_ptr, len(kl.load(x_ptr + kl.arange(0, 4))))",
     "only works on compile-time values", ".shape"),
    (unknown_python_builtin, "kl.store(x_ptr, sorted((3, 1))[0])", "the Python builtin 'sorted' cannot be used",
     "kl."),
]


@pytest.mark.parametrize("kernel, line, wrong, instead", CASES, ids=[c[0].source.name for c in CASES])
def test_unsupported_construct_says_what_to_do_instead(kernel, line, wrong, instead):
    args = [np.ones(16, np.float32) if p.endswith("_ptr") else 5 for p in kernel.source.params]
    with pytest.raises(kdsl.CompilationError) as info:
        kernel.compile(*args)
    e = info.value
    assert re.search(wrong, e.reason), e.reason
    assert re.search(instead, e.reason), e.reason
    assert e.loc.file == __file__
    lines = str(e).splitlines()
    quoted = next(i for i, text in enumerate(lines) if text.strip().startswith(line))
    caret = lines[quoted + 1]
    assert set(caret.strip()) == {"^"} and caret.index("^") >= lines[quoted].index(line[0])


def test_async_kernels_are_rejected_where_they_are_declared():
    async def fetch(x_ptr):
        await fetch(x_ptr)

    with pytest.raises(kdsl.CompilationError, match="must be a plain `def` function, not `async def`") as info:
        kdsl.kernel(fetch).compile(np.ones(4, np.float32))
    assert "async def fetch(x_ptr):" in str(info.value)
