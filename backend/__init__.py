"""The GPU backend: Jittor's set-up and the products and kernels the models run on.

    runtime.py       set-up before Jittor's import (CPU or GPU, flags), matmul precision
    patches.py       every change made to Jittor (installed headers, jt.array), with its reason
    kernels.py       jt.code templates, row views, the GPU self-check of kernels with a formula
    blas.py          direct cuBLAS GEMM; transposes that stay on the GPU without cuTT
    conv.py          the convolution's kernels: window columns, reflection padding
    reductions.py    row mean/variance, row sums, ReLU-gradient bias sums (one block per row)
    cudnn.py         cuDNN 9 convolutions through jt.code
    cublaslt.py      Linear layers as cuBLASLt matmuls with epilogues (cublaslt_src.py: C++)
    jit_extern.py    what the cuDNN and cuBLASLt bindings share

Who imports what (tests/test_backend.py checks it): backend imports nothing from the rest of
the project, and nothing imports in a circle.  Entry points set up Jittor through
runtime.setup() (core/cli.py, bench/, tests/conftest.py).  Model, render and pipeline code
reach the backend only through models/layers.py, which chooses each product's implementation;
modules with their own fused kernels (models/embedder.py, render/) use kernels.py's templates.
"""
