"""The on-disk cache of compiled kernels.

Entries live in `KDSL_CACHE_DIR` (by default `$XDG_CACHE_HOME/kdsl`, else `~/.cache/kdsl`);
`KDSL_CACHE_DIR=off` turns the cache off. An entry is content-addressed: its key hashes
everything that changes the generated code (see `compiler.cache_key`: the kernel's IR with
source locations, which captures its source, the kernels it calls and the values it is
specialised on; the options; the target machine; kdsl's own code and LLVM's version).

A file holds a magic line, the SHA-256 of its payload, the payload's length and the payload
(a pickle of plain data and kdsl's own types). A file whose magic, length or digest does not
match is deleted and rebuilt, never unpickled. Writes go to a temporary file in the same
directory renamed into place, so concurrent processes never see half an entry and the last
writer's (identical) entry wins.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import struct
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

MAGIC = b"kdsl-cache 1\n"
_HEADER = struct.Struct("<32sQ")
SUFFIX = ".kdslc"


def directory() -> Path | None:
    """Where entries are kept; None when `KDSL_CACHE_DIR=off`."""
    configured = os.environ.get("KDSL_CACHE_DIR")
    if configured == "off":
        return None
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "kdsl"


@lru_cache(maxsize=None)
def code_version() -> str:
    """A digest of kdsl's own source files, so that any change to the compiler invalidates entries."""
    return source_digest(os.path.dirname(os.path.abspath(__file__)))


def source_digest(root: str) -> str:
    """A digest of the Python files under `root` (and of Python's version): each file's path, size
    and modification time, which Python trusts for its bytecode cache too (reading kdsl's files
    took 2.6 ms of a fresh process's first launch, their stats take 0.7 ms)."""
    digest = hashlib.sha256(sys.version.encode())
    for folder, subfolders, files in os.walk(root):
        subfolders.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                stat = os.stat(os.path.join(folder, name))
                digest.update(f"{os.path.relpath(folder, root)}/{name} {stat.st_size} {stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()


def key(*parts: str) -> str:
    digest = hashlib.sha256(code_version().encode())
    for part in parts:
        digest.update(b"\0" + part.encode())
    return digest.hexdigest()


class _KdslUnpickler(pickle.Unpickler):
    """Reads back only builtin containers and kdsl's own classes."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "builtins" or module == "kdsl" or module.startswith("kdsl."):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not a kdsl cache type")


def _path(entry_key: str) -> Path | None:
    root = directory()
    return None if root is None else root / entry_key[:2] / (entry_key + SUFFIX)


def load(entry_key: str) -> Any | None:
    """The value stored under `entry_key`, or None when absent or damaged (a damaged file is removed)."""
    path = _path(entry_key)
    if path is None:
        return None
    try:
        data = path.read_bytes()
    except OSError:
        return None
    payload = _payload(data)
    if payload is not None:
        try:
            return _KdslUnpickler(io.BytesIO(payload)).load()
        except Exception:  # an entry written by an incompatible kdsl: rebuilt below
            pass
    with contextlib.suppress(OSError):
        path.unlink()
    return None


def _payload(data: bytes) -> bytes | None:
    start = len(MAGIC) + _HEADER.size
    if not data.startswith(MAGIC) or len(data) < start:
        return None
    digest, length = _HEADER.unpack_from(data, len(MAGIC))
    payload = data[start:]
    if len(payload) != length or hashlib.sha256(payload).digest() != digest:
        return None
    return payload


def store(entry_key: str, value: Any) -> None:
    """Write `value` under `entry_key`; a cache that cannot be written is skipped silently."""
    path = _path(entry_key)
    if path is None:
        return
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    data = MAGIC + _HEADER.pack(hashlib.sha256(payload).digest(), len(payload)) + payload
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


@dataclass(frozen=True)
class Report:
    directory: Path | None
    entries: int
    bytes: int

    def __str__(self) -> str:
        if self.directory is None:
            return "kdsl cache: off (KDSL_CACHE_DIR=off)"
        return f"kdsl cache at {self.directory}: {self.entries} entries, {self.bytes / 2**20:.1f} MiB"


def _entries() -> list[Path]:
    root = directory()
    return [] if root is None or not root.is_dir() else list(root.glob(f"*/*{SUFFIX}"))


def report() -> Report:
    """How many entries the cache holds and their total size."""
    sizes = []
    for path in _entries():
        with contextlib.suppress(OSError):
            sizes.append(path.stat().st_size)
    return Report(directory(), len(sizes), sum(sizes))


def clear() -> int:
    """Delete every entry; returns how many were deleted."""
    removed = 0
    for path in _entries():
        with contextlib.suppress(OSError):
            path.unlink()
            removed += 1
    return removed
