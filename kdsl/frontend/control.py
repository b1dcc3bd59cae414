"""`if` and `for` statements: compile-time ones unroll in Python, runtime ones build
structured IR whose yields carry every variable the statement changes."""
from __future__ import annotations

import ast
from typing import Any

from kdsl import language
from kdsl.errors import CompilationError
from kdsl.frontend import semantic as sem
from kdsl.frontend.semantic import Tensor
from kdsl.ir.core import Region
from kdsl.ir.types import ScalarType, Type


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
        before = dict(self.scope)
        regions, scopes = [], []
        for stmts in (node.body, node.orelse):
            self.scope = dict(before)
            region = Region()
            with self.builder.at(region):
                self.region_depth += 1
                try:
                    self.visit_body(stmts)
                finally:
                    self.region_depth -= 1
            regions.append(region)
            scopes.append(self.scope)
        self.scope = before
        self._join_if(node, cond, regions, scopes, before)

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
        if fn is not range and fn is not language.static_range:
            raise CompilationError("for loops must iterate over range(...) or kl.static_range(...)")
        if it.keywords:
            raise CompilationError("range() takes positional arguments only")
        if not isinstance(node.target, ast.Name):
            raise CompilationError("the loop variable must be a single name")
        if node.orelse:
            raise CompilationError("`for ... else` is not supported")
        bounds = [self.visit(a) for a in it.args]
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
        for i in range(start, end, step):
            self.scope[node.target.id] = i
            self.visit_body(node.body)

    def _runtime_for(self, node: ast.For, start: Any, end: Any, step: Any) -> None:
        b = self.builder
        iv_type = sem.loop_type(start, end, step)
        lb, ub, st = (sem.cast(b, sem.to_tensor(b, v, iv_type), iv_type).handle for v in (start, end, step))
        names = sorted(n for n in _assigned_names(node.body) if n in self.scope and n != node.target.id)
        types = {n: self._initial_type(n, self.scope[n]) for n in names}
        for _attempt in range(2):
            region, yielded = self._loop_body(node, iv_type, names, types)
            retyped = {n: v.type for n, v in yielded.items()
                       if isinstance(v, Tensor) and v.type != types[n] and not isinstance(self.scope[n], Tensor)}
            if not retyped:
                break
            types.update(retyped)
        with b.at(region):
            b.create("yield", [self.materialize(n, yielded[n], types[n]).handle for n in names], [])
        inits = [self.materialize(n, self.scope[n], types[n]).handle for n in names]
        op = b.create("for", [lb, ub, st, *inits], [types[n] for n in names], regions=[region])
        for name, result in zip(names, op.results):
            self.scope[name] = Tensor(result)
        for name in _assigned_names(node.body) - set(names):
            if name in self.scope:
                del self.scope[name]
            self.dropped[name] = (f"'{name}' is first assigned inside the loop on line {self.src.loc(node).line}; "
                                  "assign it before the loop to use it after")

    def _initial_type(self, name: str, value: Any) -> Type:
        if isinstance(value, Tensor):
            return value.type
        if isinstance(value, sem.PyNumber):
            return sem.python_type(value)
        raise CompilationError(f"'{name}' holds {sem.type_name(value)}, which cannot be reassigned inside a loop")

    def _loop_body(self, node: ast.For, iv_type: ScalarType, names: list[str], types: dict[str, Type]):
        """Visit the body once with the carried variables as region arguments."""
        region = Region([iv_type, *(types[n] for n in names)], [node.target.id, *names])
        saved = dict(self.scope)
        self.scope[node.target.id] = Tensor(region.args[0])
        for name, arg in zip(names, region.args[1:]):
            self.scope[name] = Tensor(arg)
        with self.builder.at(region):
            self.region_depth += 1
            try:
                self.visit_body(node.body)
            finally:
                self.region_depth -= 1
        yielded = {n: self.scope[n] for n in names}
        self.scope = saved
        return region, yielded
