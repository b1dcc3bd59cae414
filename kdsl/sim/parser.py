"""PTX text → `ParsedModule`: functions, their instructions and module data.

The parser knows PTX's lexical structure only; it does not check types.
Registers declared inside nested `{ ... }` blocks (Triton's inline-asm
blocks) are renamed to unique names so each scope keeps its own registers.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

from kdsl.sim.errors import PtxParseError


@dataclass(frozen=True)
class Reg:
    name: str


@dataclass(frozen=True)
class Imm:
    """An immediate: `value` is an int, or a float when `is_float`."""

    value: int | float
    is_float: bool = False


@dataclass(frozen=True)
class Sym:
    name: str


@dataclass(frozen=True)
class Addr:
    """`[base+offset]`; base is a Reg, a Sym, or None for an absolute address."""

    base: Reg | Sym | None
    offset: int


@dataclass(frozen=True)
class Vec:
    items: tuple


@dataclass(frozen=True)
class Not:
    """`!%p`: a negated predicate operand."""

    reg: Reg


@dataclass(frozen=True)
class Pair:
    """`%r|%p`: the value and predicate results of `shfl.sync`/`setp`."""

    first: Reg
    second: Reg


Operand = Reg | Imm | Sym | Addr | Vec | Pair | Not


@dataclass
class Instruction:
    opcode: str
    mods: tuple[str, ...]
    operands: list
    text: str
    guard: Reg | None = None
    guard_negated: bool = False
    source: tuple[str, int, int] | None = None  # (file, line, column) of the latest `.loc`, if any


@dataclass
class Variable:
    """A `.shared`/`.global`/`.const`/`.local` variable."""

    space: str
    name: str
    size: int
    align: int
    extern: bool = False
    init: bytes | None = None


@dataclass
class Param:
    name: str
    type: str
    size: int
    align: int


@dataclass
class Function:
    name: str
    is_entry: bool
    params: list[Param]
    returns: list[Param]
    body: list = field(default_factory=list)  # Instruction or label str
    variables: list[Variable] = field(default_factory=list)


@dataclass
class ParsedModule:
    version: str = ""
    target: str = ""
    functions: dict[str, Function] = field(default_factory=dict)
    variables: list[Variable] = field(default_factory=list)


_TYPE_SIZES = {"b8": 1, "u8": 1, "s8": 1, "b16": 2, "u16": 2, "s16": 2, "f16": 2, "bf16": 2,
               "b32": 4, "u32": 4, "s32": 4, "f32": 4, "f16x2": 4, "bf16x2": 4,
               "b64": 8, "u64": 8, "s64": 8, "f64": 8, "b128": 16, "pred": 1}
_LABEL = re.compile(r"^\s*([A-Za-z_$][\w$]*)\s*:(?!:)")
_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)


def _strip_labels(buf: list[str], events: list[tuple[str, str]]) -> str:
    """The buffered statement text with leading `label:`s moved into `events`."""
    cur = "".join(buf).strip()
    while m := _LABEL.match(cur):
        events.append(("label", m.group(1)))
        cur = cur[m.end():].strip()
    return cur


def _split_statements(text: str) -> list[tuple[str, str]]:
    """Split into ('stmt', text), ('label', name), ('open', header) and ('close', '') events.

    A `{` opens a block when nothing but a function header precedes it in the
    current statement; otherwise it belongs to an operand (`{%r1, %r2}`) or
    an initialiser.
    """
    events: list[tuple[str, str]] = []
    buf: list[str] = []
    depth = 0  # brace depth inside the current statement
    for ch in text:
        if ch == "{" and depth == 0:
            cur = _strip_labels(buf, events)
            if not cur or (re.search(r"\.(entry|func)\b", cur) and "=" not in cur):
                events.append(("open", cur))
                buf = []
            else:
                depth, buf = 1, [cur, " ", ch]
            continue
        if ch == "{":
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
        elif ch == "}" or (ch == ";" and depth == 0):
            cur = _strip_labels(buf, events)
            buf = []
            if ch == ";":
                if cur:
                    events.append(("stmt", cur))
            elif cur:
                raise PtxParseError(f"unterminated statement before '}}': {cur!r}")
            else:
                events.append(("close", ""))
            continue
        buf.append(ch)
    rest = _strip_labels(buf, events)
    if rest:
        raise PtxParseError(f"statement without ';' at end of input: {rest!r}")
    return events


def parse_int(tok: str) -> int:
    t = tok.strip()
    neg = t.startswith("-")
    t = t.lstrip("+-")
    if t.endswith("U"):
        t = t[:-1]
    if t.lower().startswith("0x"):
        v = int(t, 16)
    elif len(t) > 1 and t.startswith("0") and t.isdigit():
        v = int(t, 8)
    elif t.lower().startswith("0b"):
        v = int(t, 2)
    else:
        v = int(t)
    return -v if neg else v


def parse_imm(tok: str) -> Imm:
    t = tok.strip()
    neg = t.startswith("-")
    body = t.lstrip("+-")
    if re.fullmatch(r"0[fF][0-9a-fA-F]{8}", body):
        v = struct.unpack("<f", struct.pack("<I", int(body[2:], 16)))[0]
        return Imm(-v if neg else v, True)
    if re.fullmatch(r"0[dD][0-9a-fA-F]{16}", body):
        v = struct.unpack("<d", struct.pack("<Q", int(body[2:], 16)))[0]
        return Imm(-v if neg else v, True)
    try:
        return Imm(parse_int(t))
    except ValueError:
        return Imm(float(t), True)


def _split_commas(text: str) -> list[str]:
    out, depth, cur = [], 0, []
    for ch in text:
        if ch in "{[(":
            depth += 1
        elif ch in "}])":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return out


class _Scopes:
    """Register scopes: inner-block declarations get unique names."""

    def __init__(self) -> None:
        self.stack: list[dict[str, str]] = [{}]
        self.counter = 0

    def declare(self, name: str) -> None:
        if len(self.stack) > 1:
            self.counter += 1
            self.stack[-1][name] = f"{name}#{self.counter}"

    def resolve(self, name: str) -> str:
        for scope in reversed(self.stack):
            if name in scope:
                return scope[name]
        return name


def _operand(tok: str, scopes: _Scopes) -> Operand:
    t = tok.strip()
    if t.startswith("{") and t.endswith("}"):
        return Vec(tuple(_operand(x, scopes) for x in _split_commas(t[1:-1])))
    if t.startswith("[") and t.endswith("]"):
        inner = t[1:-1].strip()
        m = re.fullmatch(r"([^+\-]+?)\s*(?:([+-])\s*(\S+))?", inner)
        if not m:
            raise PtxParseError(f"cannot read address {t!r}")
        base_tok, sign, off = m.groups()
        offset = parse_int(off) * (-1 if sign == "-" else 1) if off else 0
        base_tok = base_tok.strip()
        if base_tok.startswith("%"):
            return Addr(Reg(scopes.resolve(base_tok)), offset)
        if re.fullmatch(r"[-+]?(0[xX][0-9a-fA-F]+|\d+)U?", base_tok):
            return Addr(None, parse_int(base_tok) + offset)
        return Addr(Sym(base_tok), offset)
    if "|" in t:
        a, b = t.split("|")
        return Pair(Reg(scopes.resolve(a.strip())), Reg(scopes.resolve(b.strip())))
    if t.startswith("%"):
        return Reg(scopes.resolve(t))
    if t.startswith("!%"):
        return Not(Reg(scopes.resolve(t[1:])))
    if t == "_":
        return Sym("_")
    if re.match(r"[-+]?(\d|0[fFdDxX])", t):
        return parse_imm(t)
    return Sym(t)


def _instruction(stmt: str, scopes: _Scopes, source: tuple[str, int, int] | None) -> Instruction:
    guard, neg = None, False
    m = re.match(r"@(!?)(%[\w$.#]+)\s+", stmt)
    rest = stmt
    if m:
        neg = m.group(1) == "!"
        guard = Reg(scopes.resolve(m.group(2)))
        rest = stmt[m.end():]
    m = re.match(r"([\w.:]+)\s*(.*)", rest, re.S)
    if not m:
        raise PtxParseError(f"cannot read instruction {stmt!r}")
    name, ops_text = m.group(1), m.group(2)
    # `.shared::cta` is the CTA's own shared memory, which plain `.shared` means (§5.1.5).
    pieces = [p[: -len("::cta")] if p.endswith("::cta") else p for p in name.split(".")]
    if pieces[0] == "call":
        operands = [_operand(x, scopes) if not x.strip().startswith("(") else
                    Vec(tuple(_operand(y, scopes) for y in _split_commas(x.strip()[1:-1])))
                    for x in _split_commas(ops_text)]
    else:
        operands = [_operand(x, scopes) for x in _split_commas(ops_text)]
    return Instruction(pieces[0], tuple(pieces[1:]), operands, " ".join(stmt.split()), guard, neg, source)


_DECL = re.compile(
    r"^(?P<pre>(?:\.(?:extern|visible|weak|global|shared|const|local|param|reg|align\s+\d+|"
    r"ptr|[a-z0-9]+)\s+)*)(?P<name>[%\w$.]+)\s*(?:<(?P<range>\d+)>)?\s*(?P<dims>(?:\[\s*\d*\s*\])*)"
    r"\s*(?:=\s*(?P<init>.*))?$", re.S)


def _parse_decl(stmt: str) -> tuple[list[str], str, int | None, list[int | None], str | None]:
    m = _DECL.match(stmt.strip())
    if not m:
        raise PtxParseError(f"cannot read declaration {stmt!r}")
    words = m.group("pre").split()
    dims = [int(d) if d.strip() else None for d in re.findall(r"\[\s*(\d*)\s*\]", m.group("dims"))]
    rng = int(m.group("range")) if m.group("range") else None
    return words, m.group("name"), rng, dims, m.group("init")


def _variable(stmt: str) -> Variable:
    words, name, _, dims, init = _parse_decl(stmt)
    space = next(w[1:] for w in words if w in (".shared", ".global", ".const", ".local", ".param"))
    align_i = words.index(".align") if ".align" in words else -1
    ty = next(w[1:] for w in words if w[1:] in _TYPE_SIZES)
    elem = _TYPE_SIZES[ty]
    count = 1
    for d in dims:
        count *= d if d is not None else 0
    align = int(words[align_i + 1]) if align_i >= 0 else elem
    data = None
    if init is not None:
        data = _initialiser(init, ty, elem, count)
    return Variable(space, name, elem * count, align, ".extern" in words or None in dims, data)


def _initialiser(init: str, ty: str, elem: int, count: int) -> bytes:
    toks = [t for t in re.split(r"[{},\s]+", init) if t]
    out = bytearray()
    for tok in toks:
        imm = parse_imm(tok)
        if ty.startswith("f"):
            out += struct.pack("<f" if elem == 4 else "<d", float(imm.value))
        else:
            out += (int(imm.value) & ((1 << (8 * elem)) - 1)).to_bytes(elem, "little")
    return bytes(out.ljust(elem * count, b"\0"))


def _params(text: str) -> list[Param]:
    out = []
    for piece in _split_commas(text):
        if not piece:
            continue
        words, name, _, dims, _ = _parse_decl(piece)
        ty = next(w[1:] for w in words if w[1:] in _TYPE_SIZES)
        count = 1
        for d in dims:
            count *= d or 1
        align_i = words.index(".align") if ".align" in words else -1
        elem = _TYPE_SIZES[ty]
        out.append(Param(name, ty, elem * count, int(words[align_i + 1]) if align_i >= 0 else elem))
    return out


def _function_header(header: str) -> Function:
    m = re.search(r"\.(entry|func)\s*(?:\((?P<ret>[^)]*)\))?\s*(?P<name>[\w$.]+)\s*(?:\((?P<params>.*)\))?",
                  header, re.S)
    if not m:
        raise PtxParseError(f"cannot read function header {header!r}")
    return Function(m.group("name"), m.group(1) == "entry", _params(m.group("params") or ""),
                    _params(m.group("ret") or ""))


_IGNORED = (".pragma", ".section", ".maxntid", ".reqntid", ".minnctapersm",
            ".maxnreg", ".maxclusterrank", ".reqnctapercluster", ".explicitcluster", ".noreturn")


def parse(text: str) -> ParsedModule:
    """Read a PTX module."""
    module = ParsedModule()
    text = _COMMENTS.sub("", text)
    text = re.sub(r"\.section\s+[^{;]*?\{[^}]*\}", "", text)
    files = dict(re.findall(r'^\s*\.file\s+(\d+)\s+"([^"]*)"', text, flags=re.M))
    text = re.sub(r"^\s*\.file\b[^\n]*$", "", text, flags=re.M)
    text = re.sub(r"^(\s*\.loc\b[^\n;]*)$", r"\1;", text, flags=re.M)
    source: tuple[str, int, int] | None = None
    text = re.sub(r"^(\s*\.(?:version|target|address_size)\b[^\n;]*)$", r"\1;", text, flags=re.M)
    func: Function | None = None
    scopes = _Scopes()
    depth = 0
    for kind, payload in _split_statements(text):
        if kind == "open":
            if func is None:
                func = _function_header(payload)
                scopes = _Scopes()
                depth = 1
                module.functions[func.name] = func
            else:
                depth += 1
                scopes.stack.append({})
            continue
        if kind == "close":
            depth -= 1
            if func is not None and depth == 0:
                func = None
            elif func is not None:
                scopes.stack.pop()
            continue
        if kind == "label":
            if func is None:
                raise PtxParseError(f"label {payload!r} outside a function")
            func.body.append(payload)
            continue
        stmt = payload
        first = stmt.split(None, 1)[0]
        if first == ".loc":
            source = _source_line(stmt, files)
            continue
        if first in _IGNORED or first.startswith("@@"):
            continue
        if func is None:
            _top_level(module, stmt)
        elif first == ".reg":
            words, name, rng, _, _ = _parse_decl(stmt)
            names = [f"{name}{i}" for i in range(rng)] if rng is not None else [
                n.strip() for n in stmt.split(None, 2)[2].split(",")]
            for n in names:
                scopes.declare(n)
        elif first.startswith(".") or first in ("prototype",):
            if re.match(r"(\.\w+\s+)*\.(shared|local|global|const|param)\b", stmt) and "prototype" not in stmt:
                func.variables.append(_variable(stmt))
        elif re.match(r"[\w$]+\s*:\s*\.callprototype", stmt):
            continue
        else:
            func.body.append(_instruction(stmt, scopes, source))
    return module


def _source_line(stmt: str, files: dict[str, str]) -> tuple[str, int, int] | None:
    """What a `.loc file line column` directive (§11.6.1) says, None for line 0 (no line, as LLVM
    marks code it merged from several) or an unknown file."""
    m = re.match(r"\.loc\s+(\d+)\s+(\d+)\s+(\d+)", stmt)
    if not m or m.group(1) not in files or int(m.group(2)) == 0:
        return None
    return files[m.group(1)], int(m.group(2)), int(m.group(3))


def _top_level(module: ParsedModule, stmt: str) -> None:
    first = stmt.split(None, 1)[0]
    if first == ".version":
        module.version = stmt.split()[1]
    elif first == ".target":
        module.target = stmt.split(None, 1)[1]
    elif first == ".address_size":
        if stmt.split()[1] != "64":
            raise PtxParseError("only .address_size 64 is supported")
    elif re.search(r"\.(entry|func)\b", stmt):
        return  # a declaration (prototype) without a body
    elif re.search(r"\.(shared|global|const)\b", stmt):
        module.variables.append(_variable(stmt))
    else:
        raise PtxParseError(f"unexpected top-level statement {stmt!r}")
