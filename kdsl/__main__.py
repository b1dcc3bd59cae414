"""`python -m kdsl`: compile kernels ahead of time and look after the on-disk cache.

    python -m kdsl compile MODULE:KERNEL --signature "*fp32,*fp32,i32" --constexpr BLOCK=1024 \\
        --target cuda --arch sm_90 -o out.ptx
    python -m kdsl cache [--clear]

MODULE is an importable module name or a path to a .py file. Compiling for `cuda` needs no GPU.
"""
from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any, Sequence

from kdsl import cache
from kdsl.compiler import TARGETS, CompileOptions, compile_kernel, resolve_arch
from kdsl.errors import KdslError
from kdsl.runtime.binding import bind_signature
from kdsl.runtime.kernel import Kernel

EMITS = {"ir": "ir", "llvm": "llvm", "ptx": "ptx", "cubin": "cubin"}
_SUFFIXES = {".ir": "ir", ".kdsl": "ir", ".ll": "llvm", ".ptx": "ptx", ".cubin": "cubin"}


def _load_kernel(spec: str) -> Kernel:
    module_name, sep, kernel_name = spec.rpartition(":")
    if not sep or not module_name or not kernel_name:
        raise KdslError(f"name the kernel as MODULE:KERNEL (a module or a .py file), got {spec!r}")
    path = Path(module_name)
    if path.suffix == ".py" or path.is_file():
        if not path.is_file():
            raise KdslError(f"no such file: {module_name}")
        found_spec = importlib.util.spec_from_file_location(path.stem, path)
        if found_spec is None or found_spec.loader is None:
            raise KdslError(f"cannot import {module_name}")
        module = importlib.util.module_from_spec(found_spec)
        sys.modules[path.stem] = module
        found_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(module_name)
    found: Any = module
    for part in kernel_name.split("."):
        found = getattr(found, part, None)
    while found is not None and not isinstance(found, Kernel) and hasattr(found, "fn"):
        found = found.fn  # through autotune/heuristics wrappers
    if not isinstance(found, Kernel):
        raise KdslError(f"{kernel_name!r} in {module_name} is not a @kdsl.kernel")
    return found


def _constexpr(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise KdslError(f"write constexprs as NAME=VALUE, got {text!r}")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        raise KdslError(f"the value of {name} must be a Python literal (a number, True, 'text'), got {value!r}") \
            from None


def _compile(args: argparse.Namespace) -> None:
    kernel = _load_kernel(args.kernel)
    constants = dict(_constexpr(c) for c in args.constexpr)
    bound = bind_signature(kernel.source, args.signature, constants)
    emit = args.emit or _SUFFIXES.get(Path(args.output).suffix if args.output else "",
                                      "ptx" if args.target in ("cuda", "sim") else "llvm")
    if emit in ("ptx", "cubin") and args.target not in ("cuda", "sim"):
        raise KdslError(f"--emit {emit} needs --target cuda")
    options = CompileOptions(target=args.target, arch=resolve_arch(args.target, args.arch or "sm_80", bound),
                             num_warps=args.num_warps, num_stages=args.num_stages, cubin=emit == "cubin")
    compiled = compile_kernel(kernel, bound, options)
    if emit not in compiled.asm:
        raise KdslError("--emit cubin needs ptxas (the CUDA toolkit) on the PATH")
    result = compiled.asm[EMITS[emit]]
    if args.output in (None, "-"):
        sys.stdout.write(result if isinstance(result, str) else result.hex())
    elif isinstance(result, bytes):
        Path(args.output).write_bytes(result)
    else:
        Path(args.output).write_text(result)


def _cache(args: argparse.Namespace) -> None:
    if args.clear:
        print(f"removed {cache.clear()} entries")
    print(cache.report())


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m kdsl", description="kdsl's command line.")
    commands = top.add_subparsers(dest="command", required=True)
    comp = commands.add_parser("compile", help="compile a kernel ahead of time (no GPU needed)",
                               description="Compile a @kdsl.kernel for the types in --signature and write "
                                           "its IR, LLVM IR, PTX or cubin.")
    comp.add_argument("kernel", help="MODULE:KERNEL, MODULE an importable module or a .py file")
    comp.add_argument("--signature", "-s", required=True,
                      help='the runtime parameters\' types in order, as Triton writes them: "*fp32:16,*fp32,i32" '
                           "(':16': the pointer or int is divisible by 16)")
    comp.add_argument("--constexpr", "-c", action="append", default=[], metavar="NAME=VALUE",
                      help="a constexpr parameter's value (repeat for each)")
    comp.add_argument("--target", default="cuda", choices=[t for t in TARGETS if t != "interpret"])
    comp.add_argument("--arch", help="GPU architecture (sm_80, sm_86, sm_89, sm_90, sm_90a; default sm_80)")
    comp.add_argument("--num-warps", type=int, default=4)
    comp.add_argument("--num-stages", type=int, default=3)
    comp.add_argument("--emit", choices=list(EMITS), help="what to write (default: from -o's suffix, else ptx "
                                                         "for cuda and llvm for cpu)")
    comp.add_argument("-o", "--output", help="the file to write (default: stdout; a cubin as hex)")
    comp.set_defaults(run=_compile)
    store = commands.add_parser("cache", help="show (or --clear) the on-disk cache of compiled kernels")
    store.add_argument("--clear", action="store_true", help="delete every entry")
    store.set_defaults(run=_cache)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except KdslError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
