"""Kernels the GPU lowering tests run directly on the simulator: the simple row softmax and layer norm
(one program per row), the API.md vector add, and tutorial 03's matmul with a fused bias + ReLU epilogue."""
import kdsl
import kdsl.language as kl


@kdsl.kernel
def add(x_ptr, y_ptr, out_ptr, n, BLOCK: kl.constexpr):
    pid = kl.program_id(0)
    offs = pid * BLOCK + kl.arange(0, BLOCK)
    mask = offs < n
    x = kl.load(x_ptr + offs, mask=mask)
    y = kl.load(y_ptr + offs, mask=mask, other=0.0)
    kl.store(out_ptr + offs, x + y, mask=mask)


@kdsl.kernel
def softmax(out_ptr, in_ptr, in_stride, out_stride, n_cols, BLOCK: kl.constexpr):
    row = kl.program_id(0)
    offs = kl.arange(0, BLOCK)
    mask = offs < n_cols
    x = kl.load(in_ptr + row * in_stride + offs, mask=mask, other=-float("inf"))
    x = x - kl.max(x, axis=0)
    num = kl.exp(x)
    kl.store(out_ptr + row * out_stride + offs, num / kl.sum(num, axis=0), mask=mask)


@kdsl.kernel
def layer_norm(x_ptr, w_ptr, b_ptr, y_ptr, stride, n_cols, eps, BLOCK: kl.constexpr):
    row = kl.program_id(0)
    cols = kl.arange(0, BLOCK)
    mask = cols < n_cols
    x = kl.load(x_ptr + row * stride + cols, mask=mask, other=0.0).to(kl.float32)
    mean = kl.sum(x, axis=0) / n_cols
    xc = kl.where(mask, x - mean, 0.0)
    var = kl.sum(xc * xc, axis=0) / n_cols
    rstd = 1 / kl.sqrt(var + eps)
    w = kl.load(w_ptr + cols, mask=mask)
    b = kl.load(b_ptr + cols, mask=mask)
    kl.store(y_ptr + row * stride + cols, xc * rstd * w + b, mask=mask)


@kdsl.kernel
def matmul_kernel(a_ptr, b_ptr, c_ptr, bias_ptr, M, N, K, stride_am, stride_ak, stride_bk, stride_bn,
                  stride_cm, stride_cn, BLOCK_SIZE_M: kl.constexpr, BLOCK_SIZE_N: kl.constexpr,
                  BLOCK_SIZE_K: kl.constexpr, GROUP_SIZE_M: kl.constexpr, EPILOGUE: kl.constexpr):
    """Triton's tutorial 03: grouped program ordering, a K loop carrying the accumulator,
    masked edges; EPILOGUE "bias_relu" fuses `relu(c + bias[None, :])`."""
    pid = kl.program_id(axis=0)
    num_pid_m = kl.cdiv(M, BLOCK_SIZE_M)
    num_pid_n = kl.cdiv(N, BLOCK_SIZE_N)
    num_pid_in_group = GROUP_SIZE_M * num_pid_n
    group_id = pid // num_pid_in_group
    first_pid_m = group_id * GROUP_SIZE_M
    group_size_m = kl.minimum(num_pid_m - first_pid_m, GROUP_SIZE_M)
    pid_m = first_pid_m + ((pid % num_pid_in_group) % group_size_m)
    pid_n = (pid % num_pid_in_group) // group_size_m

    offs_am = pid_m * BLOCK_SIZE_M + kl.arange(0, BLOCK_SIZE_M)
    offs_bn = pid_n * BLOCK_SIZE_N + kl.arange(0, BLOCK_SIZE_N)
    offs_k = kl.arange(0, BLOCK_SIZE_K)
    a_ptrs = a_ptr + (offs_am[:, None] * stride_am + offs_k[None, :] * stride_ak)
    b_ptrs = b_ptr + (offs_k[:, None] * stride_bk + offs_bn[None, :] * stride_bn)
    accumulator = kl.zeros((BLOCK_SIZE_M, BLOCK_SIZE_N), dtype=kl.float32)
    for k in range(0, kl.cdiv(K, BLOCK_SIZE_K)):
        a = kl.load(a_ptrs, mask=(offs_am[:, None] < M) & (offs_k[None, :] < K - k * BLOCK_SIZE_K), other=0.0)
        b = kl.load(b_ptrs, mask=(offs_k[:, None] < K - k * BLOCK_SIZE_K) & (offs_bn[None, :] < N), other=0.0)
        accumulator = kl.dot(a, b, accumulator)
        a_ptrs += BLOCK_SIZE_K * stride_ak
        b_ptrs += BLOCK_SIZE_K * stride_bk
    if EPILOGUE == "bias_relu":
        bias = kl.load(bias_ptr + offs_bn, mask=offs_bn < N, other=0.0)
        accumulator = kl.maximum(accumulator + bias[None, :], 0.0)
    offs_cm = pid_m * BLOCK_SIZE_M + kl.arange(0, BLOCK_SIZE_M)
    offs_cn = pid_n * BLOCK_SIZE_N + kl.arange(0, BLOCK_SIZE_N)
    c_ptrs = c_ptr + stride_cm * offs_cm[:, None] + stride_cn * offs_cn[None, :]
    kl.store(c_ptrs, accumulator, mask=(offs_cm[:, None] < M) & (offs_cn[None, :] < N))


def elements(x):
    return [s // x.itemsize for s in x.strides]
