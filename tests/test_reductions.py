"""backend/reductions.py: row mean/variance, row sums and the ReLU-gradient bias sums against
NumPy; their CUDA sources compiled by nvcc where it is installed."""
import os
import shutil
import subprocess

import jittor as jt
import numpy as np
import pytest

from backend import reductions
from backend.reductions import mean_var_last


# ---------------------------------------------------------------- row mean and variance
@pytest.mark.parametrize("shape", [(2, 3, 50), (4, 1), (3, 1000), (7,)])
def test_mean_var_last_matches_numpy_with_gradients(shape):
    rng = np.random.default_rng(len(shape))
    x = (rng.standard_normal(shape) * 3 + 5).astype(np.float32)  # an offset mean, as after ReLU
    xv = jt.array(x)
    mean, var = mean_var_last(xv)
    n = shape[-1]
    want_var = x.var(-1, ddof=1) if n > 1 else np.zeros(shape[:-1], np.float32)
    assert mean.shape == shape[:-1] or (mean.shape == (1,) and shape[:-1] == ())
    np.testing.assert_allclose(mean.numpy().reshape(shape[:-1]), x.mean(-1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(var.numpy().reshape(shape[:-1]), want_var, rtol=1e-4, atol=1e-5)
    # gradient of sum(a * mean + b * var): a / n + b * 2 (x - mean) / (n - 1)
    a = rng.random(shape[:-1]).astype(np.float32)
    b = rng.random(shape[:-1]).astype(np.float32)
    loss = (mean * jt.array(a).reshape(mean.shape)).sum() + (var * jt.array(b).reshape(var.shape)).sum()
    got = jt.grad(loss, xv).numpy()
    dev = x - x.mean(-1, keepdims=True)
    want = a[..., None] / n + b[..., None] * 2 * dev / max(n - 1, 1)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    # one output alone (the other's gradient is None)
    got_var_only = jt.grad((var * jt.array(b).reshape(var.shape)).sum(), xv).numpy()
    np.testing.assert_allclose(got_var_only, b[..., None] * 2 * dev / max(n - 1, 1), rtol=1e-4, atol=1e-6)


def test_mean_var_last_rejects_other_dtypes():
    with pytest.raises(TypeError, match="float32"):
        mean_var_last(jt.array(np.zeros((2, 3), np.float32)).float64())


def _compile_code_op_cuda(tmp_path, name, cuda_src, in_dims, out_dims):
    """Compile a jt.code CUDA source with nvcc, Jittor's macros (@ARGS_DEF, @ARGS, @PRECALC,
    inN_type) written out as Jittor's code op expands them for float32 arrays of these ranks."""
    nvcc = shutil.which("nvcc") or "/usr/local/cuda/bin/nvcc"
    if not os.path.isfile(nvcc):
        pytest.skip("needs nvcc")
    decl, call = [], []
    for kind, dims in (("in", in_dims), ("out", out_dims)):
        for i, nd in enumerate(dims):
            decl.append(f"float* __restrict__ {kind}{i}_p")
            call.append(f"{kind}{i}_p")
            for j in range(nd):
                decl.append(f"index_t {kind}{i}_shape{j}")
                call.append(f"{kind}{i}_shape{j}")
    types = "".join(f"typedef float in{i}_type;\n" for i in range(len(in_dims)))
    kernels, _, launch = cuda_src.rpartition("\n}\n")
    src = ("typedef int index_t;\n" + types
           + (kernels + "\n}\n").replace("@ARGS_DEF", ", ".join(decl + ["int __tmp"])).replace("@PRECALC", "")
           + "void launch(" + ", ".join(decl) + ") {\n" + launch.replace("@ARGS", ", ".join(call + ["0"])) + "\n}\n")
    (tmp_path / f"{name}.cu").write_text(src)
    run = subprocess.run([nvcc, "-c", "-o", str(tmp_path / f"{name}.o"), str(tmp_path / f"{name}.cu")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr + "\n" + src


def test_row_stats_cuda_source_compiles_with_nvcc(tmp_path):
    """The CUDA kernels run only on the GPU; here their sources must at least compile."""
    src = reductions._ROW_STATS_CUDA.replace("THREADS", str(reductions._ROW_STATS_THREADS))
    _compile_code_op_cuda(tmp_path, "row_stats", src, [2], [1, 1])


@pytest.mark.parametrize("shape", [(6, 4096), (3, 1), (1, 777)])
def test_row_sums_match_numpy(shape):
    x = np.random.default_rng(shape[1]).standard_normal(shape).astype(np.float32) + 2
    got = reductions.row_sums(jt.array(x)).numpy()
    np.testing.assert_allclose(got, x.astype(np.float64).sum(1), rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="row_sums"):
        reductions.row_sums(jt.array(x).reshape((-1,)))


def test_row_sums_cuda_source_compiles_with_nvcc(tmp_path):
    src = reductions._ROW_SUMS_CUDA.replace("THREADS", str(reductions._ROW_STATS_THREADS))
    _compile_code_op_cuda(tmp_path, "row_sums", src, [2], [1])


# ---------------------------------------------------------------- ReLU gradient + bias sums
@pytest.mark.parametrize("n,o", [(3000, 37), (2049, 256), (5, 3), (1, 1)])
def test_relu_grad_bias_sums_match_numpy(n, o, monkeypatch):
    monkeypatch.setattr(reductions, "_SUMS_ROWS_PER_CHUNK", 256)  # several chunks even for small N
    rng = np.random.default_rng(n)
    g = rng.standard_normal((n, o)).astype(np.float32)
    y = rng.standard_normal((n, o)).astype(np.float32)
    y[0, 0] = 0.0  # ReLU's gradient at exactly 0 is 0 (as torch and Jittor)
    gp, db = reductions.relu_grad_bias_sums(jt.array(g), jt.array(y))
    want = g * (y > 0)
    np.testing.assert_array_equal(gp.numpy(), want)
    np.testing.assert_allclose(db.numpy(), want.astype(np.float64).sum(0), rtol=1e-5, atol=1e-4)
    same, db_plain = reductions.relu_grad_bias_sums(jt.array(g))
    np.testing.assert_array_equal(same.numpy(), g)
    np.testing.assert_allclose(db_plain.numpy(), g.astype(np.float64).sum(0), rtol=1e-5, atol=1e-4)


def test_relu_grad_bias_sums_rejects_bad_shapes():
    with pytest.raises(ValueError, match="relu_grad_bias_sums"):
        reductions.relu_grad_bias_sums(jt.zeros((3, 4)), jt.zeros((4, 3)))
    with pytest.raises(ValueError, match="relu_grad_bias_sums"):
        reductions.relu_grad_bias_sums(jt.zeros((12,)))


@pytest.mark.parametrize("masked", [True, False])
def test_relu_grad_bias_sums_cuda_source_compiles_with_nvcc(tmp_path, masked):
    _, cuda = reductions._sums_sources(masked)
    _compile_code_op_cuda(tmp_path, f"sums_{masked}", cuda, [2, 2] if masked else [2], [2, 2] if masked else [2])
