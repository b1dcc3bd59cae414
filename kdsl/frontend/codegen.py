"""The AST visitor: Python statements and expressions of a kernel → kdsl IR.

Values in the visitor are either `Tensor`s (runtime values with an IR handle)
or plain Python objects (compile-time values: numbers, dtypes, tuples, None,
kernels, builtins). Operations on compile-time values run in Python, as
Triton's constexpr do; everything typed goes through `semantic`.
"""
from __future__ import annotations

import ast
import builtins
import functools
import operator
from types import ModuleType
from typing import Any, Callable

from kdsl import language
from kdsl.errors import CompilationError
from kdsl.frontend import semantic as sem
from kdsl.frontend.builtins import MATMUL_UNSUPPORTED, BuiltinCall, MethodCall, attribute_of_tensor, call_builtin
from kdsl.frontend.control import ControlFlow, ReturnSignal, with_continuation
from kdsl.frontend.source import KernelSource
from kdsl.frontend.semantic import Tensor
from kdsl.ir.builder import Builder
from kdsl.ir.core import Function, Module
from kdsl.ir.types import PointerType, Type

_BINARY = {
    ast.Add: ("add", operator.add), ast.Sub: ("sub", operator.sub), ast.Mult: ("mul", operator.mul),
    ast.Div: ("truediv", operator.truediv), ast.FloorDiv: ("floordiv", operator.floordiv),
    ast.Mod: ("mod", operator.mod), ast.BitAnd: ("and", operator.and_), ast.BitOr: ("or", operator.or_),
    ast.BitXor: ("xor", operator.xor), ast.LShift: ("shl", operator.lshift), ast.RShift: ("shr", operator.rshift),
}
_COMPARE = {
    ast.Lt: ("lt", operator.lt), ast.LtE: ("le", operator.le), ast.Gt: ("gt", operator.gt),
    ast.GtE: ("ge", operator.ge), ast.Eq: ("eq", operator.eq), ast.NotEq: ("ne", operator.ne),
}
_CONSTEXPR_ONLY_COMPARE = {ast.Is: ("is", operator.is_), ast.IsNot: ("is not", operator.is_not),
                           ast.In: ("in", lambda a, b: a in b), ast.NotIn: ("not in", lambda a, b: a not in b)}

_PY_BUILTINS: dict[str, Callable] = {
    "min": builtins.min, "max": builtins.max, "abs": builtins.abs, "len": builtins.len,
    "int": int, "float": float, "bool": bool, "isinstance": isinstance, "range": range,
    "print": language.device_print,  # as Triton
}

_COMPREHENSION = ("comprehensions are not supported in kernels; write a `for` loop over kl.static_range, "
                  "or compute the values as one block (kl.arange and arithmetic)")
_FUNCTION_DEF = ("nested function definitions are not supported in kernels (nor closures over a kernel's values); "
                 "define a separate @kdsl.kernel function at module level and pass it the values it needs as "
                 "arguments")
_NOT_STORED = "read globals as constants and write results to memory with kl.store"

_UNSUPPORTED = {
    ast.Break: "`break` is not supported in kernels (nor in Triton); use a `while` loop whose condition ends it, "
               "or mask the remaining iterations",
    ast.Continue: "`continue` is not supported in kernels (nor in Triton); put the rest of the body under an `if`",
    ast.With: "`with` is not supported in kernels; write the body without the context manager",
    ast.Try: "`try` is not supported in kernels: nothing can be caught there; check values with `if`, "
             "kl.static_assert (compile time) or kl.device_assert (run time)",
    ast.Raise: "`raise` is not supported in kernels; use kl.static_assert for compile-time checks and "
               "kl.device_assert (or `assert`) for run-time ones",
    ast.Global: f"`global` is not supported in kernels; {_NOT_STORED}",
    ast.Nonlocal: f"`nonlocal` is not supported in kernels; {_NOT_STORED}",
    ast.FunctionDef: _FUNCTION_DEF,
    ast.AsyncFunctionDef: _FUNCTION_DEF,
    ast.ClassDef: "class definitions are not supported in kernels; define classes outside the kernel and pass "
                  "compile-time values (numbers, dtypes, tuples) as kl.constexpr arguments",
    ast.Lambda: "lambdas are not supported in kernels; define a @kdsl.kernel function and call it (or pass it "
                "as a combine_fn)",
    ast.ListComp: f"list {_COMPREHENSION}",
    ast.DictComp: f"dict {_COMPREHENSION}",
    ast.SetComp: f"set {_COMPREHENSION}",
    ast.GeneratorExp: "generator expressions are not supported in kernels; write a `for` loop over kl.static_range",
    ast.Dict: "dicts are not supported in kernels; use a tuple or separate variables",
    ast.Set: "sets are not supported in kernels; use a tuple",
    ast.JoinedStr: "f-strings are not supported in kernels; pass a constant string and the values as separate "
                   'arguments, as in kl.device_print("x", x)',
    ast.Starred: "starred expressions are not supported in kernels; pass or unpack the values one by one",
    ast.Delete: "`del` is not supported in kernels; reassign the variable, or simply stop using it",
    ast.MatMult: MATMUL_UNSUPPORTED,
    ast.NamedExpr: "`:=` is not supported in kernels; assign the value on its own line first",
    ast.Yield: "`yield` is not supported in kernels: a kernel is not a generator; write results with kl.store "
               "(a device function can `return` them)",
    ast.YieldFrom: "`yield from` is not supported in kernels: a kernel is not a generator; write results with "
                   "kl.store",
    ast.Import: "`import` is not supported inside kernels; import at module level and use the module there",
    ast.ImportFrom: "`import` is not supported inside kernels; import at module level and use the module there",
    ast.Match: "`match` is not supported in kernels; use if/elif on compile-time or scalar values",
}


class CodeGenerator(ast.NodeVisitor, ControlFlow):
    """Builds one IR function from one kernel's AST."""

    def __init__(self, source: KernelSource, module: Module, fn: Function, scope: dict[str, Any],
                 specializer: "Specializer"):
        self.src = source
        self.module = module
        self.fn = fn
        self.scope = scope
        self.builder = Builder(fn.body)
        self.specializer = specializer
        self.returned: list[Any] | None = None
        self.loop_depth = 0
        self.dropped: dict[str, str] = {}

    # the visitor boundary: every error leaves with the user's line --------------
    def visit(self, node: ast.AST) -> Any:
        loc = self.src.loc(node)
        try:
            with self.builder.located(loc):
                return super().visit(node)
        except ReturnSignal:
            raise
        except CompilationError as e:
            raise e.with_context(self.src.name, loc) from None
        except RecursionError:
            raise CompilationError("the kernel nests too deeply to compile", loc, self.src.name) from None
        except Exception as e:  # a compiler bug: report it at the user's line, once
            raise CompilationError(f"internal compiler error ({type(e).__name__}: {e})", loc,
                                   self.src.name) from e

    def generic_visit(self, node: ast.AST) -> Any:
        for kind, reason in _UNSUPPORTED.items():
            if isinstance(node, kind):
                raise CompilationError(reason)
        raise CompilationError(f"{type(node).__name__} is not supported in kernels")

    def visit_body(self, stmts: list[ast.stmt]) -> None:
        for stmt in stmts:
            self.visit(stmt)

    def run(self) -> list[Any] | None:
        """Generate the function body; the returned values, if any."""
        try:
            self.visit_body(with_continuation(self.src.tree.body, []))
        except ReturnSignal:
            pass
        return self.returned

    # statements ------------------------------------------------------------------
    def visit_Expr(self, node: ast.Expr) -> None:
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return  # docstring
        self.visit(node.value)

    def visit_Pass(self, node: ast.Pass) -> None:
        return None

    def visit_Assign(self, node: ast.Assign) -> None:
        value = self.visit(node.value)
        for target in node.targets:
            self.assign(target, value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is None:
            raise CompilationError("a bare annotation assigns nothing; give the variable a value")
        self.assign(node.target, self.visit(node.value))

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if not isinstance(node.target, ast.Name):
            raise _target_error(node.target)
        current = self.visit(ast.copy_location(ast.Name(node.target.id, ast.Load()), node.target))
        self.assign(node.target, self.binary(node.op, current, self.visit(node.value)))

    def assign(self, target: ast.expr, value: Any) -> None:
        if isinstance(target, ast.Name):
            if isinstance(value, language.constexpr):
                value = value.value
            self.scope[target.id] = value
            self.dropped.pop(target.id, None)
            return
        if isinstance(target, (ast.Tuple, ast.List)):
            if any(isinstance(t, ast.Starred) for t in target.elts):
                raise CompilationError(_UNSUPPORTED[ast.Starred])
            if not isinstance(value, tuple) or len(value) != len(target.elts):
                raise CompilationError(f"cannot unpack {sem.type_name(value)} into {len(target.elts)} names")
            for t, v in zip(target.elts, value):
                self.assign(t, v)
            return
        raise _target_error(target)

    def visit_Assert(self, node: ast.Assert) -> None:
        """As Triton: `assert cond, msg` is `kl.device_assert(cond, msg)`."""
        args = [self.visit(node.test)] + ([] if node.msg is None else [self.visit(node.msg)])
        call_builtin(BuiltinCall(self.builder, self), "device_assert", args, {})

    def visit_Return(self, node: ast.Return) -> None:
        if self.loop_depth:
            raise CompilationError("`return` inside a loop is not supported; compute the result and return "
                                   "after the loop")
        value = self.visit(node.value) if node.value is not None else None
        self.returned = [] if value is None else list(value) if isinstance(value, tuple) else [value]
        raise ReturnSignal()

    # expressions -----------------------------------------------------------------
    def visit_Constant(self, node: ast.Constant) -> Any:
        return node.value

    def visit_Tuple(self, node: ast.Tuple) -> tuple:
        return tuple(self.visit(e) for e in node.elts)

    visit_List = visit_Tuple

    def visit_Name(self, node: ast.Name) -> Any:
        name = node.id
        if name in self.scope:
            return self.scope[name]
        if name in self.dropped:
            raise CompilationError(self.dropped[name])
        for table, kind in ((self.src.closure, "captured variable"), (self.src.globals, "global")):
            if name in table:
                return self.global_value(name, table[name], kind)
        if name in _PY_BUILTINS:
            return _PY_BUILTINS[name]
        if hasattr(builtins, name):
            raise CompilationError(f"the Python builtin '{name}' cannot be used in a kernel; use the kl builtins "
                                   "(kl.sum, kl.max, kl.where, ...) or compute the value before the launch and "
                                   "pass it as an argument")
        raise CompilationError(f"name '{name}' is not defined")

    def global_value(self, name: str, value: Any, kind: str = "global") -> Any:
        from kdsl.runtime.kernel import Kernel

        if isinstance(value, language.constexpr):
            return value.value
        if isinstance(value, (bool, int, float, str, type(None), tuple, language.dtype, Kernel)):
            return value
        if callable(value) and (value in language.BUILTINS or value in _HOST_HELPERS()):
            return value
        if isinstance(value, ModuleType) and value.__name__.split(".")[0] == "kdsl":
            return value
        what = f"the {kind} '{name}' ({type(value).__name__}) cannot be used in a kernel"
        if callable(value) and not isinstance(value, type):
            raise CompilationError(f"{what}: only kl builtins and @kdsl.kernel functions can be called; "
                                   "decorate it with @kdsl.kernel to call it from a kernel")
        raise CompilationError(f"{what}: kernels may use numbers, dtypes, tuples, kl builtins and @kdsl.kernel "
                               "functions; pass arrays as arguments")

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        base = self.visit(node.value)
        if isinstance(base, Tensor):
            return attribute_of_tensor(self.builder, base, node.attr)
        if isinstance(base, ModuleType):
            if not hasattr(base, node.attr):
                raise CompilationError(f"module '{base.__name__}' has no attribute '{node.attr}'")
            return self.global_value(f"{base.__name__}.{node.attr}", getattr(base, node.attr))
        if isinstance(base, language.dtype) and node.attr in ("name", "bits", "is_int", "is_float", "is_signed"):
            return getattr(base, node.attr)
        if isinstance(base, PointerType) and node.attr == "element_ty":
            return base.element_ty
        raise CompilationError(f"{sem.type_name(base)} has no attribute '{node.attr}' usable in a kernel")

    def visit_Subscript(self, node: ast.Subscript) -> Any:
        base = self.visit(node.value)
        if not isinstance(base, Tensor):
            index = self.visit(node.slice)
            try:
                return base[index]
            except Exception as e:
                raise CompilationError(f"cannot index {sem.type_name(base)}: {e}") from None
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        return self.index_tensor(base, items)

    def index_tensor(self, x: Tensor, items: list[ast.expr]) -> Tensor:
        """`x[:, None]` and friends, with the index items read from the AST (see `semantic.index`)."""
        return sem.index(self.builder, x, [_index_item(item) for item in items])

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        return self.binary(node.op, self.visit(node.left), self.visit(node.right))

    def binary(self, op: ast.operator, left: Any, right: Any) -> Any:
        if isinstance(op, ast.Pow):
            return self.power(left, right)
        if type(op) not in _BINARY:
            raise CompilationError(_UNSUPPORTED.get(type(op), f"operator {type(op).__name__} is not supported"))
        name, py = _BINARY[type(op)]
        if not isinstance(left, Tensor) and not isinstance(right, Tensor):
            return sem.python_value(py, left, right)
        return sem.binary(self.builder, name, left, right)

    def power(self, base: Any, exponent: Any) -> Any:
        if not isinstance(base, Tensor) and not isinstance(exponent, Tensor):
            return sem.python_value(operator.pow, base, exponent)
        return sem.power(self.builder, base, exponent)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Any:
        x = self.visit(node.operand)
        if not isinstance(x, Tensor):
            py = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Invert: operator.invert, ast.Not: operator.not_}
            return sem.python_value(py[type(node.op)], x)
        if isinstance(node.op, ast.USub):
            return sem.negate(self.builder, x)
        if isinstance(node.op, ast.UAdd):
            return x
        if isinstance(node.op, ast.Invert):
            return sem.invert(self.builder, x)
        return sem.logical_not(self.builder, x)

    def visit_Compare(self, node: ast.Compare) -> Any:
        if len(node.ops) != 1:
            raise CompilationError("chained comparisons are not supported; write (a < b) & (b < c)")
        op = node.ops[0]
        left, right = self.visit(node.left), self.visit(node.comparators[0])
        if type(op) in _CONSTEXPR_ONLY_COMPARE:
            spelling, py = _CONSTEXPR_ONLY_COMPARE[type(op)]
            if isinstance(left, Tensor) or isinstance(right, Tensor):
                raise CompilationError(f"'{spelling}' only compares compile-time values; use == for blocks")
            return sem.python_value(py, left, right)
        pred, py = _COMPARE[type(op)]
        if not isinstance(left, Tensor) and not isinstance(right, Tensor):
            return sem.python_value(py, left, right)
        return sem.compare(self.builder, pred, left, right)

    def visit_BoolOp(self, node: ast.BoolOp) -> Any:
        is_and = isinstance(node.op, ast.And)
        result: Any = None
        for i, operand in enumerate(node.values):
            value = self.visit(operand)
            if isinstance(value, Tensor) and value.shape:
                raise CompilationError("`and`/`or` work on scalars; use & and | on blocks")
            if not isinstance(value, Tensor) and not isinstance(result, Tensor):
                if i == 0 or (bool(result) if is_and else not bool(result)):
                    result = value
                continue
            cond = sem.to_bool(self.builder, sem.to_tensor(self.builder, value))
            result = cond if i == 0 else sem.binary(self.builder, "and" if is_and else "or",
                                                    sem.to_bool(self.builder, sem.to_tensor(self.builder, result)), cond)
        return result

    def visit_IfExp(self, node: ast.IfExp) -> Any:
        cond = self.visit(node.test)
        if not isinstance(cond, Tensor):
            return self.visit(node.body if cond else node.orelse)
        return sem.where(self.builder, cond, self.visit(node.body), self.visit(node.orelse))

    def visit_Call(self, node: ast.Call) -> Any:
        from kdsl.runtime.kernel import Kernel

        fn = self.visit(node.func)
        args = [self.visit(a) for a in node.args]
        kwargs = {}
        for kw in node.keywords:
            if kw.arg is None:
                raise CompilationError("**kwargs in calls are not supported in kernels; pass each keyword "
                                       "argument by name")
            kwargs[kw.arg] = self.visit(kw.value)
        if isinstance(fn, MethodCall):
            return fn(self.builder, args, kwargs, self)
        if fn in language.BUILTINS:
            return call_builtin(BuiltinCall(self.builder, self), language.BUILTINS[fn], args, kwargs)
        if isinstance(fn, Kernel):
            return self.specializer.call(self, fn, args, kwargs)
        if fn is language.constexpr:
            return args[0] if args else None
        if fn is range:
            raise CompilationError("range() can only be used as the iterable of a for loop")
        if (fn is builtins.min or fn is builtins.max) and len(args) > 1 and not kwargs \
                and any(isinstance(a, Tensor) for a in args):
            return functools.reduce(lambda x, y: sem.binary(self.builder, fn.__name__, x, y), args)
        if fn in _PY_BUILTINS.values() or fn in _HOST_HELPERS():
            if any(isinstance(a, Tensor) for a in (*args, *kwargs.values())):
                raise CompilationError(f"{getattr(fn, '__name__', fn)}() only works on compile-time values here; "
                                       "on blocks use x.shape for sizes, kl.minimum/kl.maximum/kl.abs, or .to()")
            return sem.python_value(lambda: fn(*args, **kwargs))
        raise CompilationError(f"cannot call {getattr(fn, '__name__', sem.type_name(fn))} in a kernel: "
                               "only kl builtins and @kdsl.kernel functions can be called")


def _target_error(target: ast.expr) -> CompilationError:
    """Why a target other than a name cannot be assigned to, and what to write instead."""
    if isinstance(target, ast.Subscript):
        return CompilationError("a block's elements cannot be assigned to (blocks are values, not arrays); build "
                                "the new block with kl.where(kl.arange(0, N) == i, value, x), or write memory "
                                "with kl.store")
    return CompilationError("only names can be assigned to in kernels; assign a new variable instead "
                            "(x.to(dtype) converts a block)")


def _index_item(item: ast.expr) -> object:
    """A block index item as a Python value: `:` → slice(None), None → None; anything else as is."""
    if isinstance(item, ast.Slice) and item.lower is None and item.upper is None and item.step is None:
        return slice(None)
    if isinstance(item, ast.Constant) and item.value is None:
        return None
    return item


def _HOST_HELPERS() -> tuple[Callable, ...]:
    import kdsl

    return (kdsl.cdiv, kdsl.next_power_of_2)


class Specializer:
    """Generates device functions on demand, one per distinct set of argument types and constants."""

    def __init__(self, module: Module):
        self.module = module
        self.generated: dict[tuple, Function] = {}
        self.active: list[Any] = []

    def call(self, caller: CodeGenerator, callee: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
        src = callee.source
        bound = src.bind(args, kwargs, CompilationError)
        runtime = [(n, v) for n, v in bound.items() if isinstance(v, Tensor) and n not in src.constexprs]
        for n in src.constexprs:
            if isinstance(bound[n], Tensor):
                raise CompilationError(f"'{src.name}' needs the compile-time constant '{n}', got a runtime value; "
                                       "pass a Python number or a caller's parameter annotated kl.constexpr")
        constants = {n: v for n, v in bound.items() if not isinstance(v, Tensor)}
        key = (id(callee), tuple((n, v.type) for n, v in runtime),
               tuple((n, _constant_key(v)) for n, v in constants.items()))
        if callee in self.active:
            raise CompilationError(f"'{src.name}' calls itself; recursion is not supported in kernels: "
                                   "rewrite it as a loop")
        fn = self.generated.get(key)
        if fn is None:
            self.active.append(callee)
            try:
                fn = self.generate(callee, constants, [(n, v.type) for n, v in runtime], is_kernel=False)
            finally:
                self.active.pop()
            self.generated[key] = fn
        op = caller.builder.create("call", [v.handle for _, v in runtime], list(fn.result_types), {"callee": fn.name})
        results = [Tensor(r) for r in op.results]
        return None if not results else results[0] if len(results) == 1 else tuple(results)

    def generate(self, kernel: Any, constants: dict[str, Any], args: list[tuple[str, Type]], is_kernel: bool,
                 arg_attrs: list[dict[str, Any]] | None = None) -> Function:
        """A new function in the module: `kernel` with `constants` bound and `args` as typed parameters."""
        src = kernel.source
        name = src.name if is_kernel else f"{src.name}_{len(self.generated)}"
        fn = Function(name, [t for _, t in args], [], [n for n, _ in args], arg_attrs, is_kernel=is_kernel,
                      loc=src.loc(src.tree))
        self.module.add(fn)
        scope = dict(constants)
        scope.update({n: Tensor(a) for (n, _), a in zip(args, fn.args)})
        gen = CodeGenerator(src, self.module, fn, scope, self)
        returned = gen.run() or []
        if is_kernel and returned:
            raise CompilationError("a kernel cannot return a value; store results through a pointer argument",
                                   src.loc(src.tree), src.name)
        with gen.builder.located(src.loc(src.tree)):
            values = [sem.to_tensor(gen.builder, v) for v in returned]
            fn.result_types = [v.type for v in values]
            gen.builder.create("return", [v.handle for v in values], [])
        return fn


def _constant_key(value: Any) -> Any:
    return (type(value).__name__, repr(value)) if not hasattr(value, "source") else ("kernel", id(value))


def build_module(kernel: Any, constants: dict[str, Any], args: list[tuple[str, Type]],
                 arg_attrs: list[dict[str, Any]]) -> Module:
    """The IR module of `kernel` with `constants` bound and `args` as its typed runtime parameters."""
    module = Module()
    spec = Specializer(module)
    spec.active.append(kernel)
    spec.generate(kernel, constants, args, is_kernel=True, arg_attrs=arg_attrs)
    return module
