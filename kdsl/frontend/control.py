"""`if` and `for` statements: compile-time ones unroll in Python, runtime ones build
structured IR whose yields carry every variable the statement changes."""
from __future__ import annotations

import ast
from typing import Any, Callable

from kdsl import language
from kdsl.errors import CompilationError
from kdsl.frontend import semantic as sem
from kdsl.frontend.builtins import range_bounds
from kdsl.frontend.semantic import Tensor
from kdsl.ir.core import Region
from kdsl.ir.types import Type


class ReturnSignal(Exception):
    """Unwinds the statement lists after a `return`; the values are in `CodeGenerator.returned`."""


def contains_return(stmt: ast.stmt) -> bool:
    """Whether an `if` holds a `return` in one of its branches (loops are not searched)."""
    return isinstance(stmt, ast.If) and any(isinstance(s, ast.Return) or contains_return(s)
                                            for s in stmt.body + stmt.orelse)


def with_continuation(stmts: list[ast.stmt], rest: list[ast.stmt]) -> list[ast.stmt]:
    """`stmts` then `rest`, where each `if` holding a `return` takes everything after it into
    both branches. Then every `return` ends a path through the function, and an `if` with
    returning branches yields the returned values."""
    for i, stmt in enumerate(stmts):
        if isinstance(stmt, ast.Return):
            return stmts[:i + 1]
        if contains_return(stmt):
            after = stmts[i + 1:] + rest
            branches = ast.If(test=stmt.test, body=with_continuation(stmt.body, after),
                              orelse=with_continuation(stmt.orelse, after))
            return stmts[:i] + [ast.copy_location(branches, stmt)]
    return stmts + rest


def _assigned_names(stmts: list[ast.stmt]) -> set[str]:
    names: set[str] = set()
    for stmt in stmts:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
    return names


def _merge_type(name: str, a: Any, b: Any) -> Type | None:
    """The type a variable carried out of a region gets, or None when it stays a Python value."""
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        if a is b or (isinstance(a, sem.PyNumber) and type(a) is type(b) and a == b):
            return None
        if isinstance(a, sem.PyNumber) and isinstance(b, sem.PyNumber):
            return sem.compute_type(sem.python_type(a), sem.python_type(b), "where")
        raise CompilationError(f"'{name}' holds different compile-time values on different paths; "
                               "only numbers and blocks can change under a runtime condition")
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        if a.type != b.type:
            raise CompilationError(f"'{name}' is {a.type} on one path and {b.type} on the other; "
                                   "convert one with .to() so both have one type")
        return a.type
    tensor, other = (a, b) if isinstance(a, Tensor) else (b, a)
    if not isinstance(other, sem.PyNumber):
        raise CompilationError(f"'{name}' is a block on one path and {sem.type_name(other)} on the other")
    return tensor.type


class ControlFlow:
    """Mixed into the code generator: statements that open regions."""

    def materialize(self, name: str, value: Any, type: Type) -> Tensor:
        """`value` as a Tensor of exactly `type` (Python numbers become constants)."""
        if isinstance(value, Tensor):
            if value.type != type:
                raise CompilationError(f"'{name}' changes type from {type} to {value.type}; "
                                       "a variable keeps one type through a loop or an if")
            return value
        if not isinstance(value, sem.PyNumber):
            raise CompilationError(f"'{name}' holds {sem.type_name(value)}, which cannot change in a loop or an if")
        return sem.full(self.builder, type.shape, value, type.scalar)

    # if ---------------------------------------------------------------------------
    def visit_If(self, node: ast.If) -> None:
        cond = self.visit(node.test)
        if not isinstance(cond, Tensor):
            self.visit_body(node.body if cond else node.orelse)
            return
        if cond.shape:
            raise CompilationError(f"`if` needs a scalar condition, got a block {cond.type}; use kl.where for blocks")
        cond = sem.to_bool(self.builder, cond)
        if contains_return(node):
            self._returning_if(cond, node)
        before = dict(self.scope)
        regions, scopes = [Region(), Region()], []
        for region, stmts in zip(regions, (node.body, node.orelse)):
            _, scope = self._in_region(region, {}, lambda stmts=stmts: self.visit_body(stmts))
            scopes.append(scope)
        self._join_if(node, cond, regions, scopes, before)

    def _returning_if(self, cond: Tensor, node: ast.If) -> None:
        """An `if` whose branches end the function: it yields the values they return."""
        if self.loop_depth:
            raise CompilationError("`return` inside a loop is not supported; compute the result and return "
                                   "after the loop")
        regions, returned = [Region(), Region()], []
        for region, stmts in zip(regions, (node.body, node.orelse)):
            values, _ = self._in_region(region, {}, lambda stmts=stmts: self._path_result(stmts))
            returned.append(values)
        if len(returned[0]) != len(returned[1]):
            raise CompilationError(f"the paths through this `if` return {len(returned[0])} and {len(returned[1])} "
                                   "values; every return must give the same number")
        types = [_merge_type(f"return value {i}", a, b) or sem.python_type(a) for i, (a, b) in enumerate(zip(*returned))]
        for region, values in zip(regions, returned):
            with self.builder.at(region):
                self.builder.create("yield", [self.materialize("a return value", v, ty).handle
                                              for v, ty in zip(values, types)], [])
        op = self.builder.create("if", [cond.handle], types, regions=regions)
        self.returned = [Tensor(r) for r in op.results]
        raise ReturnSignal()

    def _path_result(self, stmts: list[ast.stmt]) -> list[Any]:
        """Visit a path to the end of the function; the values it returns (none when it falls off the end)."""
        self.returned = None
        try:
            self.visit_body(stmts)
        except ReturnSignal:
            pass
        return self.returned or []

    def _join_if(self, node: ast.If, cond: Tensor, regions: list[Region], scopes: list[dict], before: dict) -> None:
        then_scope, else_scope = scopes
        carried: list[tuple[str, Type]] = []
        for name in sorted(set(then_scope) | set(else_scope)):
            if name not in then_scope or name not in else_scope:
                self.dropped[name] = (f"'{name}' is assigned in only one branch of the `if` on line "
                                      f"{self.src.loc(node).line}; assign it before the `if` or in both branches")
                self.scope.pop(name, None)
                continue
            a, b = then_scope[name], else_scope[name]
            if name in before and a is before[name] and b is before[name]:
                continue
            merged = _merge_type(name, a, b)
            if merged is None:
                self.scope[name] = a
            else:
                carried.append((name, merged))
        for region, scope in zip(regions, scopes):
            with self.builder.at(region):
                values = [self.materialize(n, scope[n], ty).handle for n, ty in carried]
                self.builder.create("yield", values, [])
        op = self.builder.create("if", [cond.handle], [ty for _, ty in carried], regions=regions)
        for (name, _), result in zip(carried, op.results):
            self.scope[name] = Tensor(result)

    # for --------------------------------------------------------------------------
    def visit_For(self, node: ast.For) -> None:
        it = node.iter
        fn = self.visit(it.func) if isinstance(it, ast.Call) else None
        if fn is not range and fn is not language.static_range and fn is not language.range:
            raise CompilationError("for loops must iterate over range(...), kl.range(...) or kl.static_range(...)")
        if it.keywords and fn is not language.range:
            raise CompilationError("range() takes positional arguments only")
        if not isinstance(node.target, ast.Name):
            raise CompilationError("the loop variable must be a single name")
        if node.orelse:
            raise CompilationError("`for ... else` is not supported; kernels have no `break`, so put the `else` "
                                   "code after the loop")
        bounds = [self.visit(a) for a in it.args]
        if fn is language.range:
            bounds = range_bounds(bounds, {k.arg: self.visit(k.value) for k in it.keywords})
        if not 1 <= len(bounds) <= 3:
            raise CompilationError("range() takes 1 to 3 arguments")
        start, end, step = (0, bounds[0], 1) if len(bounds) == 1 else (*bounds, 1)[:3]
        if fn is language.static_range:
            self._static_for(node, start, end, step)
        else:
            self._runtime_for(node, start, end, step)

    def _static_for(self, node: ast.For, start: Any, end: Any, step: Any) -> None:
        if any(isinstance(v, Tensor) or not isinstance(v, int) for v in (start, end, step)):
            raise CompilationError("kl.static_range needs compile-time integer bounds")
        for i in sem.python_value(range, start, end, step):
            self.scope[node.target.id] = i
            self.visit_body(node.body)

    def _runtime_for(self, node: ast.For, start: Any, end: Any, step: Any) -> None:
        b = self.builder
        iv_type = sem.loop_type(start, end, step)
        bounds = [sem.cast(b, sem.to_tensor(b, v, iv_type), iv_type).handle for v in (start, end, step)]
        target = node.target.id

        def build(names: list[str], types: list[Type]) -> tuple[list[Region], Region, dict[str, Any]]:
            body = Region([iv_type, *types], [target, *names])
            bindings = {target: Tensor(body.args[0]), **{n: Tensor(a) for n, a in zip(names, body.args[1:])}}
            _, scope = self._in_region(body, bindings, lambda: self.visit_body(node.body), loop=True)
            return [body], body, scope

        self._carried_loop(node, "for", bounds, build, exclude={target})

    def visit_While(self, node: ast.While) -> None:
        if node.orelse:
            raise CompilationError("`while ... else` is not supported; kernels have no `break`, so put the `else` "
                                   "code after the loop")

        def condition() -> Tensor:
            cond = self.visit(node.test)
            if not isinstance(cond, Tensor):
                raise CompilationError("a `while` condition must change at run time; this one is the compile-time "
                                       f"value {cond!r}" + (" and the loop would never end" if cond else ""))
            if cond.shape:
                raise CompilationError(f"`while` needs a scalar condition, got a block {cond.type}")
            return sem.to_bool(self.builder, cond)

        def build(names: list[str], types: list[Type]) -> tuple[list[Region], Region, dict[str, Any]]:
            before, after = Region(types, names), Region(types, names)
            cond, _ = self._in_region(before, {n: Tensor(a) for n, a in zip(names, before.args)}, condition, loop=True)
            with self.builder.at(before):
                self.builder.create("condition", [cond.handle, *before.args], [])
            _, scope = self._in_region(after, {n: Tensor(a) for n, a in zip(names, after.args)},
                                       lambda: self.visit_body(node.body), loop=True)
            return [before, after], after, scope

        self._carried_loop(node, "while", [], build, exclude=set())

    def _carried_loop(self, node: ast.For | ast.While, name: str, operands: list, build, exclude: set[str]) -> None:
        """A runtime loop carrying every variable its body assigns that exists before it.

        `build(names, types)` generates the loop's regions and returns them, the body
        region and the scope at the end of the body. A carried variable that starts as a
        Python number takes the type the body gives it (one retry), as `acc = 0` then
        `acc += x` expects.
        """
        b = self.builder
        names = sorted(n for n in _assigned_names(node.body) if n in self.scope and n not in exclude)
        types = {n: self._initial_type(n, self.scope[n]) for n in names}
        for _attempt in range(2):
            regions, body, scope = build(names, [types[n] for n in names])
            retyped = {n: scope[n].type for n in names if isinstance(scope[n], Tensor)
                       and scope[n].type != types[n] and not isinstance(self.scope[n], Tensor)}
            if not retyped:
                break
            types.update(retyped)
        with b.at(body):
            b.create("yield", [self.materialize(n, scope[n], types[n]).handle for n in names], [])
        inits = [self.materialize(n, self.scope[n], types[n]).handle for n in names]
        op = b.create(name, [*operands, *inits], [types[n] for n in names], regions=regions)
        for var, result in zip(names, op.results):
            self.scope[var] = Tensor(result)
        for var in _assigned_names(node.body) - set(names) - exclude:
            self.scope.pop(var, None)
            self.dropped[var] = (f"'{var}' is first assigned inside the loop on line {self.src.loc(node).line}; "
                                 "assign it before the loop to use it after")

    def _initial_type(self, name: str, value: Any) -> Type:
        if isinstance(value, Tensor):
            return value.type
        if isinstance(value, sem.PyNumber):
            return sem.python_type(value)
        raise CompilationError(f"'{name}' holds {sem.type_name(value)}, which cannot be reassigned inside a loop")

    def _in_region(self, region: Region, bindings: dict[str, Any], visit: Callable[[], Any],
                   loop: bool = False) -> tuple[Any, dict]:
        """Run `visit` building into `region` with `bindings` in scope; its result and the scope it leaves."""
        saved = dict(self.scope)
        self.scope.update(bindings)
        self.loop_depth += loop
        try:
            with self.builder.at(region):
                result = visit()
        finally:
            self.loop_depth -= loop
        scope, self.scope = self.scope, saved
        return result, scope
