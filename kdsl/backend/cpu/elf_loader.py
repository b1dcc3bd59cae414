"""Loading the object files LLVM makes for this host without LLVM: a fresh process with a warm
disk cache runs its first kernel without importing llvmlite's binding (about 20 ms) or creating
an execution engine.

What it takes: an x86-64 ELF relocatable object of the kind MCJIT emits (the large code model:
every relocation `R_X86_64_64`, S + A; `R_X86_64_PC64` and the 32-bit `PC32`/`PLT32` where
their values fit), with read-only sections only (code and constants: `.text`, `.ltext`,
`.rodata*`, `.lrodata`; `.eh_frame` is left out, nothing here unwinds through kernels). Undefined
symbols resolve to `externals` (the callbacks into Python) or to what the process has loaded
(libc's memcpy, libm's exp, libgcc's conversions). The sections are copied into one anonymous
mapping, relocated, then made read-only and executable.

Anything else (another machine, writable sections, common symbols, other relocation types, a
symbol the process cannot find) raises `Unsupported`, and the caller links the object with
LLVM instead (`jit.load_object`).
"""
from __future__ import annotations

import ctypes
import mmap
import platform
import struct
import sys
import weakref
from dataclasses import dataclass
from functools import lru_cache

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_SYM = struct.Struct("<IBBHQQ")
_RELA = struct.Struct("<QQq")
EM_X86_64, ET_REL = 62, 1
SHT_PROGBITS, SHT_SYMTAB, SHT_RELA, SHT_NOBITS = 1, 2, 4, 8
SHF_WRITE, SHF_ALLOC = 0x1, 0x2
SHN_UNDEF, SHN_ABS, SHN_COMMON = 0, 0xFFF1, 0xFFF2
R_X86_64_64, R_X86_64_PC32, R_X86_64_PLT32, R_X86_64_PC64 = 1, 2, 4, 24
SKIPPED = (".eh_frame",)
PAGE = mmap.PAGESIZE


class Unsupported(Exception):
    """The object holds something this loader does not handle."""


@dataclass(frozen=True)
class _Section:
    name: str
    type: int
    flags: int
    offset: int
    size: int
    link: int
    info: int
    align: int


@lru_cache(maxsize=None)
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    return libc


@lru_cache(maxsize=None)
def _process_symbol(name: str) -> int | None:
    """The address of `name` in what the process has loaded, else in libm or libgcc_s."""
    found = _symbol_in(_libc(), name)
    if found is not None:
        return found
    import ctypes.util  # runs a subprocess: only where the process lacks the symbol

    for library in ("m", "gcc_s"):
        path = ctypes.util.find_library(library)
        try:
            found = _symbol_in(ctypes.CDLL(path), name) if path is not None else None
        except OSError:
            continue
        if found is not None:
            return found
    return None


def _symbol_in(library: ctypes.CDLL, name: str) -> int | None:
    try:
        return ctypes.cast(getattr(library, name), ctypes.c_void_p).value
    except AttributeError:
        return None


class LoadedCode:
    """An object file's code in memory; `address(name)` of its defined symbols. The mapping is
    released when this is collected."""

    def __init__(self, base: int, size: int, symbols: dict[str, int]):
        self._symbols = symbols
        weakref.finalize(self, _libc().munmap, base, size)

    def address(self, name: str) -> int:
        return self._symbols[name]


def _sections(data: bytes) -> list[_Section]:
    ident, e_type, machine, _, _, _, shoff, _, _, _, _, shentsize, shnum, shstrndx = _EHDR.unpack_from(data)
    if ident[:4] != b"\x7fELF" or ident[4] != 2 or ident[5] != 1 or e_type != ET_REL or machine != EM_X86_64:
        raise Unsupported("not an x86-64 ELF relocatable object")
    raw = [_SHDR.unpack_from(data, shoff + i * shentsize) for i in range(shnum)]
    names = raw[shstrndx][4]

    def name(offset: int) -> str:
        return data[names + offset:data.index(b"\0", names + offset)].decode()
    return [_Section(name(r[0]), r[1], r[2], r[4], r[5], r[6], r[7], max(r[8], 1)) for r in raw]


def load(data: bytes, externals: dict[str, int]) -> LoadedCode:
    """Load, relocate and protect the object `data` (see the module's docstring)."""
    if sys.platform != "linux" or platform.machine() != "x86_64":
        raise Unsupported("this loader runs on x86-64 Linux only")
    sections = _sections(data)
    placed: dict[int, int] = {}  # section index -> offset in the mapping
    size = 0
    for i, s in enumerate(sections):
        if s.flags & SHF_ALLOC and s.type in (SHT_PROGBITS, SHT_NOBITS) and s.name not in SKIPPED:
            if s.flags & SHF_WRITE:
                raise Unsupported(f"writable section {s.name}")
            size = -(-size // s.align) * s.align
            placed[i] = size
            size += s.size
    size = max(PAGE, -(-size // PAGE) * PAGE)
    libc = _libc()
    base = libc.mmap(None, size, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
    if base in (None, ctypes.c_void_p(-1).value):
        raise Unsupported("mmap failed")
    try:
        for i, at in placed.items():
            s = sections[i]
            if s.type == SHT_PROGBITS:
                ctypes.memmove(base + at, data[s.offset:s.offset + s.size], s.size)
        symtab_index = next(i for i, s in enumerate(sections) if s.type == SHT_SYMTAB)
        addresses, defined = _symbols(data, sections, symtab_index, placed, base, externals)
        for s in sections:
            if s.type == SHT_RELA and s.info in placed and s.link == symtab_index:
                _relocate(data, s, base + placed[s.info], addresses)
        if libc.mprotect(base, size, mmap.PROT_READ | mmap.PROT_EXEC) != 0:
            raise Unsupported("mprotect failed")
    except BaseException:
        libc.munmap(base, size)
        raise
    return LoadedCode(base, size, defined)


def _symbols(data: bytes, sections: list[_Section], symtab_index: int, placed: dict[int, int], base: int,
             externals: dict[str, int]) -> tuple[list[int | None], dict[str, int]]:
    """Each symbol's address (None for one in a section left out) and the defined ones by name."""
    symtab = sections[symtab_index]
    strtab = sections[symtab.link].offset
    addresses: list[int | None] = []
    defined: dict[str, int] = {}
    for offset in range(symtab.offset, symtab.offset + symtab.size, _SYM.size):
        name_at, _, _, shndx, value, _ = _SYM.unpack_from(data, offset)
        name = data[strtab + name_at:data.index(b"\0", strtab + name_at)].decode()
        if shndx == SHN_UNDEF:
            address = (externals.get(name) or _process_symbol(name)) if name else 0
            if address is None:
                raise Unsupported(f"undefined symbol {name}")
        elif shndx == SHN_ABS:
            address = value
        elif shndx == SHN_COMMON or shndx >= len(sections):
            raise Unsupported(f"symbol {name} in section {shndx:#x}")
        else:
            address = base + placed[shndx] + value if shndx in placed else None
            if name and address is not None:
                defined[name] = address
        addresses.append(address)
    return addresses, defined


def _relocate(data: bytes, rela: _Section, target: int, addresses: list[int | None]) -> None:
    for offset in range(rela.offset, rela.offset + rela.size, _RELA.size):
        where, info, addend = _RELA.unpack_from(data, offset)
        kind, symbol = info & 0xFFFFFFFF, info >> 32
        s = addresses[symbol]
        if s is None:
            raise Unsupported("a relocation against a section left out")
        p = target + where
        if kind == R_X86_64_64:
            ctypes.c_uint64.from_address(p).value = (s + addend) & (2**64 - 1)
        elif kind == R_X86_64_PC64:
            ctypes.c_uint64.from_address(p).value = (s + addend - p) & (2**64 - 1)
        elif kind in (R_X86_64_PC32, R_X86_64_PLT32):
            value = s + addend - p
            if not -2**31 <= value < 2**31:
                raise Unsupported("a 32-bit relocation out of range")
            ctypes.c_int32.from_address(p).value = value
        else:
            raise Unsupported(f"relocation type {kind}")
