"""Dense products and the transposes around them, on the CUDA 13 GPU without cuTT.

- gemm(a, b, ta, tb)             2-D matrix product straight through cuBLAS on the GPU, not
                                 differentiable (for hand-written backward passes)
- transpose(x, *dims)            x.transpose(*dims), as transpose_on_device on a GPU run
                                 without cuTT (the project's transposes call this)
- transpose_on_device(x, *dims)  jt.transpose that never falls back to the CPU
"""
from collections.abc import Sequence

import jittor as jt

from backend import runtime


# ---------------------------------------------------------------- transpose
def transpose_on_device(x, *dims):
    """jt.transpose / Var.permute with the same arguments, as Jittor's fused transpose op.

    Without the cuTT library (not available offline, and not built here) Jittor 1.3.11 runs any
    transpose that moves the last axis as a CPU-only op: on the H200 a decoder fine-tune
    iteration spent 1.08 of 1.16 s copying activations to the host and back for such transposes.
    `fuse_transpose` is the op Jittor itself uses for the other transposes: a plain index kernel
    that runs on the GPU and fuses with its neighbours; its gradient is the inverse transpose.
    """
    if len(dims) == 1 and isinstance(dims[0], (Sequence, jt.NanoVector)):
        dims = list(dims[0])
    elif len(dims) == 2:  # swap two axes, like jt.transpose
        axes = list(range(x.ndim))
        axes[dims[0]], axes[dims[1]] = axes[dims[1]], axes[dims[0]]
        dims = axes
    elif not dims:  # reverse all axes
        dims = list(range(x.ndim))[::-1]
    dims = [d % x.ndim for d in dims]
    if sorted(dims) != list(range(x.ndim)):
        raise ValueError(f"transpose: {dims} is not a permutation of the {x.ndim} axes of {tuple(x.shape)}")
    return jt.fuse_transpose(x, dims)


def transpose(x, *dims):
    """x.transpose(*dims) (jt.transpose's arguments), differentiable; where Jittor's own transpose
    of the last axis would run on the CPU (a GPU run without cuTT: backend.runtime's
    fused_transposes) as transpose_on_device."""
    if runtime.fused_transposes():
        return transpose_on_device(x, *dims)
    return x.transpose(*dims)


# ---------------------------------------------------------------- gemm
def gemm(a, b, trans_a=False, trans_b=False):
    """op(a) @ op(b) for 2-D a, b (op = transpose where asked), for hand-written backward passes.

    On the GPU this calls cuBLAS directly, with transposes as flags (no transposed copies).
    jt.matmul instead builds broadcast-multiply-sum and relies on a pass to recognise it as a
    GEMM.  (A first H200 run of the convolution on jt.matmul did 44 GFLOP of VGG forward in
    0.27 s; a profile later showed that time was mostly transposes running on the CPU, see
    transpose_on_device, not the GEMMs.)
    Not differentiable: use it inside a jt.Function.
    """
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"gemm takes 2-D arrays, got {tuple(a.shape)} and {tuple(b.shape)}")
    inner_a = a.shape[0] if trans_a else a.shape[1]
    inner_b = b.shape[1] if trans_b else b.shape[0]
    if inner_a != inner_b:
        raise ValueError(f"gemm: inner sizes differ: {tuple(a.shape)}{'^T' if trans_a else ''} "
                         f"x {tuple(b.shape)}{'^T' if trans_b else ''}")
    cublas = getattr(jt.compile_extern, "cublas_ops", None) if jt.flags.use_cuda else None
    if cublas is not None:
        return cublas.cublas_matmul(a, b, trans_a, trans_b)
    return jt.matmul(transpose(a) if trans_a else a, transpose(b) if trans_b else b)
