"""What the project's `jt.code` kernels share: source templates, row views, and the GPU
self-check of kernels that have a plain-Jittor formula.

- elementwise_kernel(body, name)  (cpu_src, cuda_src) running `body` for each output element
- per_row_kernel(body, name, n)   (cpu_src, cuda_src) running `body` for each row index r < n
                                  (cpu_parallel=True: the CPU loop over the cores, OpenMP)
- as_rows(x)                      x [..., N] as [R, N] and its leading shape
- register_check / kernel_ok      a kernel with a plain-Jittor formula is compared with it once
                                  per process on the GPU before first use (backend/reductions.py)

A kernel written from these templates has a CPU and a CUDA source running the same algorithm,
so the CPU tests validate the GPU logic.
"""
import jittor as jt
import numpy as np

from backend.jit_extern import failure_reason


# the CPU loop of a kernel whose rows or elements write apart, over the cores (OpenMP) once
# it is long enough to pay for starting the threads
CPU_PARALLEL_FOR = "#pragma omp parallel for if ({n} > 16384)\n"


def as_rows(x):
    """x [..., N] -> ([R, N] view, leading shape)."""
    lead = tuple(x.shape[:-1])
    n_rows = 1
    for d in lead:
        n_rows *= d
    return x.reshape((n_rows, x.shape[-1])), lead


def elementwise_kernel(body, name, ndim=4):
    """(cpu_src, cuda_src) of a kernel running `body` for each index i of an ndim-D output
    (one CUDA thread per element, grid-stride; on the CPU the loop runs over the cores).  The
    body writes element i of the output only."""
    size = " * ".join(["(long long)out0_shape0"] + [f"out0_shape{d}" for d in range(1, ndim)])
    count = f"const long long n = {size};"
    cpu = count + "\n" + CPU_PARALLEL_FOR.format(n="n") + "for (long long i = 0; i < n; i++) {" + body + "}"
    cuda = f"""
__global__ static void {name}(@ARGS_DEF) {{
    @PRECALC
    {count}
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {{{body}}}
}}
long long n_blocks = (out0->num + 255) / 256;
if (n_blocks > 65536) n_blocks = 65536;
if (n_blocks > 0) {name}<<<n_blocks, 256>>>(@ARGS);
"""
    return cpu, cuda


def per_row_kernel(body, name, n_rows, cpu_parallel=False):
    """(cpu_src, cuda_src) of a kernel running `body` once for each row index r < n_rows (a C
    expression such as "in0_shape0"): one CUDA thread per row (a ray's samples, say), grid-stride.
    cpu_parallel: the CPU loop over the cores too (only for rows that write apart: no row may
    write where another reads or writes)."""
    cpu = ((CPU_PARALLEL_FOR.format(n=n_rows) if cpu_parallel else "")
           + f"for (long long r = 0; r < {n_rows}; r++) {{{body}}}")
    cuda = f"""
__global__ static void {name}(@ARGS_DEF) {{
    @PRECALC
    for (long long r = blockIdx.x * (long long)blockDim.x + threadIdx.x; r < {n_rows};
         r += (long long)blockDim.x * gridDim.x) {{{body}}}
}}
long long n_blocks = ({n_rows} + 127) / 128;
if (n_blocks > 65536) n_blocks = 65536;
if (n_blocks > 0) {name}<<<n_blocks, 128>>>(@ARGS);
"""
    return cpu, cuda


# ---------------------------------------------------------------- GPU self-check of the kernels
# The CPU tests run the kernels' CPU sources; their CUDA sources only run on a GPU.  There each
# registered kernel is compared once per process with its plain-Jittor formula on a small input
# (several blocks and chunks, offset data) before first use; one that fails to compile or
# differs is replaced by the formula, with one log line - slower, never wrong.
_KERNEL_CHECKS = {}  # name -> (kernel, formula, make_inputs)
_kernel_state = {}   # name -> passed (decided once per process)


def register_check(name, kernel, formula, make_inputs):
    """kernel(*make_inputs()) must match formula(*make_inputs()) before kernel_ok(name) is True
    on the GPU."""
    _KERNEL_CHECKS[name] = (kernel, formula, make_inputs)


def check_inputs(shape, seed, offset=0.0):
    """A float32 Var of standard normal values (plus offset) for a self-check."""
    return jt.array((np.random.default_rng(seed).standard_normal(shape) + offset).astype(np.float32))


def _on_gpu():
    return bool(jt.flags.use_cuda)


def _max_relative_error(got, want):
    got = got if isinstance(got, (list, tuple)) else [got]
    want = want if isinstance(want, (list, tuple)) else [want]
    return max(float(np.abs(a.numpy() - b.numpy()).max() / max(np.abs(b.numpy()).max(), 1e-12))
               for a, b in zip(got, want))


def kernel_ok(name, log=print, check=True):
    """True where the named kernel may be used: always on the CPU; on the GPU once it has
    matched its formula (decided at the first call with check=True, said once if not).

    The check fetches data, so make that first call in a forward wrapper, outside any
    jt.Function and never while jt.grad builds a backward: a fetch there also executes other
    pending variables (Jittor's weak sync), and on the H200 the --gemm cublas layer, whose
    backward made this first call, ended in a segfault inside jt.grad (2026-12-02; reproduced on
    the CPU with the checks enabled there, tests/test_layers.py).  Backward helpers pass
    check=False: a kernel not yet decided is not used."""
    if not _on_gpu():
        return True
    if name not in _kernel_state:
        if not check:
            return False
        kernel, formula, make_inputs = _KERNEL_CHECKS[name]
        try:
            with jt.no_grad():
                args = make_inputs()
                err = _max_relative_error(kernel(*args), formula(*args))
            why = "" if err < 1e-4 else f"differs from its Jittor formula (relative error {err:.1e})"
        except Exception as e:  # a compile or launch failure: do not use it, and say why
            why = f"failed: {failure_reason(e)}"
        _kernel_state[name] = not why
        if why:
            log(f"backend kernel {name}: the CUDA kernel {why}; using Jittor's ops instead")
    return _kernel_state[name]
