"""target="sim" end to end with hand-written LLVM kernels in place of the lowering: packing, staging, grids, asm."""
import ml_dtypes
import numpy as np
import pytest

import kdsl
import kdsl.language as kl
from kdsl.backend.cuda import ptxas
from kdsl.backend.cuda.program import compile_gpu
from kdsl.ir import types as t
from kdsl.runtime.binding import BoundLaunch
from tests.cuda.kernels import add
from tests.cuda.lowered import SREGS, VECTOR_ADD, Lowered, elementwise, substitute_lowering
from tests.helpers import poisoned, random_array


def launch_add(x, y, out, n, block=128):
    add[(kdsl.cdiv(n, block),)](x, y, out, n, BLOCK=block, target="sim", num_warps=block // 32)


@pytest.fixture
def vector_add(monkeypatch):
    substitute_lowering(monkeypatch, VECTOR_ADD)


@pytest.mark.parametrize("n", [1, 100, 1000])
def test_vector_add_on_numpy_arrays(vector_add, n):
    rng = np.random.default_rng()
    x, y = random_array(rng, n, np.float32), random_array(rng, n, np.float32)
    out = poisoned(n, np.float32)
    launch_add(x, y, out, n)
    np.testing.assert_array_equal(out, (x.astype(np.float64) + y).astype(np.float32))


def test_vector_add_on_torch_cpu_tensors(vector_add):
    torch = pytest.importorskip("torch")
    x, y = torch.randn(300), torch.randn(300)
    out = torch.full((300,), float("nan"))
    launch_add(x, y, out, 300)
    assert torch.equal(out, x + y)


def test_aliased_arguments_share_one_device_copy(vector_add):
    rng = np.random.default_rng()
    x, y = random_array(rng, 500, np.float32), random_array(rng, 500, np.float32)
    expected = x + y
    launch_add(y, x, x, 500)  # in place, the output passed last
    np.testing.assert_array_equal(x, expected)
    buffer = random_array(rng, 600, np.float32)
    expected = np.concatenate([buffer[100:600] + y, buffer[500:]])
    launch_add(buffer[100:600], y, buffer[:500], 500)  # overlapping views; each program reads before it writes
    np.testing.assert_array_equal(buffer, expected)


def test_read_only_inputs_and_n_zero(vector_add):
    rng = np.random.default_rng()
    x, y = random_array(rng, 64, np.float32), random_array(rng, 64, np.float32)
    x.flags.writeable = False
    out = poisoned(64, np.float32)
    launch_add(x, y, out, 64)
    np.testing.assert_array_equal(out, x + y)
    out2 = poisoned(64, np.float32)
    launch_add(x, y, out2, 0)
    assert np.isnan(out2).all()


STRIDED_SCALE = elementwise("ptr addrspace(1) %x, i64 %sx, ptr addrspace(1) %out, i64 %so", """
  %w = sext i32 %i to i64
  %ix = mul i64 %w, %sx
  %io = mul i64 %w, %so
  %px = getelementptr double, ptr addrspace(1) %x, i64 %ix
  %v = load double, ptr addrspace(1) %px
  %d = fmul double %v, 2.0
  %po = getelementptr double, ptr addrspace(1) %out, i64 %io
  store double %d, ptr addrspace(1) %po""")


@kdsl.kernel
def scale(x_ptr, sx, out_ptr, so, n, BLOCK: kl.constexpr):
    i = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    kl.store(out_ptr + i * so, kl.load(x_ptr + i * sx, mask=i < n) * 2, mask=i < n)


@pytest.mark.parametrize("x_step, out_step", [(2, 1), (-1, 3), (-3, -2)])
def test_strided_and_negative_strided_arrays_keep_their_strides(monkeypatch, x_step, out_step):
    substitute_lowering(monkeypatch, STRIDED_SCALE)
    n = 50
    x_base = random_array(np.random.default_rng(), n * 3, np.float64)
    out_base = poisoned(n * 3, np.float64)
    x, out = x_base[::x_step][:n], out_base[::out_step][:n]
    untouched = np.isnan(out_base).copy()
    untouched[np.arange(out_base.size)[::out_step][:n]] = False
    scale[(1,)](x, np.int64(x.strides[0] // 8), out, np.int64(out.strides[0] // 8), n, BLOCK=64,
                target="sim", num_warps=2)
    np.testing.assert_array_equal(out, x * 2)
    assert np.isnan(out_base[untouched]).all()


SCALAR_TYPES = [(t.i1, np.bool_), (t.i8, np.int8), (t.i16, np.int16), (t.i32, np.int32), (t.i64, np.int64),
                (t.u8, np.uint8), (t.u16, np.uint16), (t.u32, np.uint32), (t.u64, np.uint64),
                (t.f16, np.float16), (t.bf16, ml_dtypes.bfloat16), (t.f32, np.float32), (t.f64, np.float64)]
_LLVM = {"f16": "half", "bf16": "bfloat", "f32": "float", "f64": "double"}


def scalar_echo(types) -> str:
    """A kernel writing each scalar parameter's bits, zero-extended, to out[k] (an i64 array)."""
    params = ", ".join(f"{_LLVM.get(ty.name, f'i{ty.bits}')} %a{k}" for k, ty in enumerate(types))
    body = []
    for k, ty in enumerate(types):
        value = f"%a{k}"
        if ty.is_float:
            body.append(f"%b{k} = bitcast {_LLVM[ty.name]} %a{k} to i{ty.bits}")
            value = f"%b{k}"
        widen = f"zext i{ty.bits} {value} to i64" if ty.bits < 64 else f"add i64 {value}, 0"
        body += [f"%z{k} = {widen}", f"%p{k} = getelementptr i64, ptr addrspace(1) %out, i32 {k}",
                 f"store i64 %z{k}, ptr addrspace(1) %p{k}"]
    return f"define ptx_kernel void @k(ptr addrspace(1) %out, {params}) {{\n  " + "\n  ".join(body) + "\n  ret void\n}"


def random_scalars(rng):
    values = []
    for ty, dtype in SCALAR_TYPES:
        if ty.is_float:
            values.append(dtype(rng.standard_normal() * 100))
        elif ty.bits == 1:
            values.append(np.bool_(rng.integers(0, 2)))
        else:
            info = np.iinfo(dtype)
            values.append(dtype(rng.integers(info.min, info.max, endpoint=True, dtype=dtype)))
    return values


def expected_bits(values) -> np.ndarray:
    return np.array([int(np.array(v).view(f"u{np.dtype(type(v)).itemsize}")) for v in values], np.uint64)


@pytest.mark.parametrize("seed", range(5))
def test_scalars_of_every_type_reach_the_kernel_bit_exact(seed):
    rng = np.random.default_rng(seed)
    values = random_scalars(rng)
    types = [ty for ty, _ in SCALAR_TYPES]
    lowered = Lowered(scalar_echo(types), params=[t.PointerType(t.i64), *types], num_warps=1)
    program, _ = compile_gpu(lowered, "echo", "sim", "sm_80")
    out = np.full(len(types), 0xDEAD, np.uint64)
    bound = BoundLaunch(values=[out.ctypes.data, *(v.item() for v in values)], arrays=[out] + [None] * len(types),
                        devices={"cpu"})
    program.launch(bound, (1, 1, 1))
    np.testing.assert_array_equal(out, expected_bits(values))


@kdsl.kernel
def echo(out_ptr, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11):
    kl.store(out_ptr, a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11)


def test_launch_arguments_of_every_numpy_scalar_type_through_the_runtime(monkeypatch):
    pairs = [p for p in SCALAR_TYPES if p[0] is not t.bf16]  # numpy has no bf16 scalars kdsl accepts
    substitute_lowering(monkeypatch, scalar_echo([ty for ty, _ in pairs]))
    values = [v for v, (ty, _) in zip(random_scalars(np.random.default_rng()), SCALAR_TYPES) if ty is not t.bf16]
    out = np.full(len(values), 0xDEAD, np.uint64)
    echo[(1,)](out.view(np.int64), *values, target="sim", num_warps=1)
    np.testing.assert_array_equal(out, expected_bits(values))


GRID_IDS = SREGS + """
define ptx_kernel void @k(ptr addrspace(1) %out) {
  %x = call i32 @llvm.nvvm.read.ptx.sreg.ctaid.x()
  %y = call i32 @llvm.nvvm.read.ptx.sreg.ctaid.y()
  %z = call i32 @llvm.nvvm.read.ptx.sreg.ctaid.z()
  %nx = call i32 @llvm.nvvm.read.ptx.sreg.nctaid.x()
  %ny = call i32 @llvm.nvvm.read.ptx.sreg.nctaid.y()
  %nz = call i32 @llvm.nvvm.read.ptx.sreg.nctaid.z()
  %tid = call i32 @llvm.nvvm.read.ptx.sreg.tid.x()
  %ntid = call i32 @llvm.nvvm.read.ptx.sreg.ntid.x()
  %zy = mul i32 %z, %ny
  %zyy = add i32 %zy, %y
  %zyyx = mul i32 %zyy, %nx
  %program = add i32 %zyyx, %x
  %first = mul i32 %program, %ntid
  %slot = add i32 %first, %tid
  %p100 = mul i32 %nx, 100
  %p10 = mul i32 %ny, 10
  %shape = add i32 %p100, %p10
  %shape3 = add i32 %shape, %nz
  %tag = mul i32 %program, 1000
  %v = add i32 %tag, %shape3
  %p = getelementptr i32, ptr addrspace(1) %out, i32 %slot
  store i32 %v, ptr addrspace(1) %p
  ret void
}"""


@kdsl.kernel
def grid_ids(out_ptr):
    kl.store(out_ptr + kl.program_id(0), kl.num_programs(0))


@pytest.mark.parametrize("grid", [5, (5,), (2, 3), (2, 3, 4), [3, 1, 2]])
@pytest.mark.parametrize("num_warps", [1, 2])
def test_grids_of_one_to_three_dimensions(monkeypatch, grid, num_warps):
    substitute_lowering(monkeypatch, GRID_IDS)
    dims = (grid,) if isinstance(grid, int) else tuple(grid)
    gx, gy, gz = dims + (1,) * (3 - len(dims))
    threads = 32 * num_warps
    out = poisoned(gx * gy * gz * threads, np.int32)
    grid_ids[grid](out, target="sim", num_warps=num_warps)
    expected = np.repeat(np.arange(gx * gy * gz) * 1000 + gx * 100 + gy * 10 + gz, threads)
    np.testing.assert_array_equal(out, expected)


def test_empty_grid_launches_nothing(vector_add):
    out = poisoned(8, np.float32)
    add[(0,)](out, out, out, 8, BLOCK=8, target="sim")
    assert np.isnan(out).all()


def test_asm_holds_every_stage_and_arch_is_part_of_the_cache_key(vector_add):
    x = np.zeros(16, np.float32)
    sim = add.compile(x, x, x, 16, BLOCK=16, target="sim")
    assert {"ir", "llvm", "llvm_optimized", "ptx"} <= sim.asm.keys()
    assert "tt.func" not in sim.asm["ptx"] and ".target sm_80" in sim.asm["ptx"]
    assert "define ptx_kernel void @k" in sim.asm["llvm"] and "ptr addrspace(1)" in sim.asm["llvm_optimized"]
    assert sim.asm["ir"].startswith("kernel @add(%x_ptr: *f32")
    cuda90 = add.compile(x, x, x, 16, BLOCK=16, target="cuda", arch="sm_90")
    cuda80 = add.compile(x, x, x, 16, BLOCK=16, target="cuda", arch="sm_80")
    assert ".target sm_90" in cuda90.asm["ptx"] and ".target sm_80" in cuda80.asm["ptx"]
    assert cuda80 is not sim and cuda80.asm["ptx"] == sim.asm["ptx"]
    assert add.compile(x, x, x, 16, BLOCK=16, target="cuda", arch="sm_90") is cuda90
    assert "cubin" not in cuda90.asm
    with pytest.raises(kdsl.KdslError, match="unknown GPU architecture 'sm_10'"):
        add.compile(x, x, x, 16, BLOCK=16, target="sim", arch="sm_10")


@pytest.mark.skipif(not ptxas.available(), reason="ptxas is not on the PATH")
def test_cubin_on_request(vector_add):
    x = np.zeros(16, np.float32)
    compiled = add.compile(x, x, x, 16, BLOCK=16, target="sim", cubin=True)
    assert compiled.asm["cubin"][:4] == b"\x7fELF" and "registers" in compiled.asm["ptxas"]


REVERSE_IN_SHARED = SREGS + """
@smem = external addrspace(3) global [0 x float], align 16
declare void @llvm.nvvm.barrier0()
define ptx_kernel void @k(ptr addrspace(1) %x, ptr addrspace(1) %out) {
  %t = call i32 @llvm.nvvm.read.ptx.sreg.tid.x()
  %n = call i32 @llvm.nvvm.read.ptx.sreg.ntid.x()
  %px = getelementptr float, ptr addrspace(1) %x, i32 %t
  %v = load float, ptr addrspace(1) %px
  %ps = getelementptr float, ptr addrspace(3) @smem, i32 %t
  store float %v, ptr addrspace(3) %ps
  call void @llvm.nvvm.barrier0()
  %last = sub i32 %n, 1
  %r = sub i32 %last, %t
  %pr = getelementptr float, ptr addrspace(3) @smem, i32 %r
  %w = load float, ptr addrspace(3) %pr
  %po = getelementptr float, ptr addrspace(1) %out, i32 %t
  store float %w, ptr addrspace(1) %po
  ret void
}"""


@pytest.mark.parametrize("num_warps", [1, 4])
def test_dynamic_shared_memory_of_the_lowered_kernel(num_warps):
    threads = 32 * num_warps
    pointer = t.PointerType(t.f32)
    lowered = Lowered(REVERSE_IN_SHARED, num_warps=num_warps, shared_bytes=4 * threads, params=[pointer, pointer])
    program, _ = compile_gpu(lowered, "reverse", "sim", "sm_80")
    x, out = random_array(np.random.default_rng(), threads, np.float32), poisoned(threads, np.float32)
    program.launch(BoundLaunch(values=[x.ctypes.data, out.ctypes.data], arrays=[x, out], devices={"cpu"}), (1, 1, 1))
    np.testing.assert_array_equal(out, x[::-1])
