"""backend/blas.py: the direct GEMM and the on-device transpose against NumPy."""
import jittor as jt
import numpy as np
import pytest

from backend import blas, runtime
from backend.blas import gemm, transpose, transpose_on_device


@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_gemm_matches_numpy_for_every_transpose(ta, tb):
    rng = np.random.default_rng(5)
    a = rng.standard_normal((4, 6) if ta else (6, 4)).astype(np.float32)
    b = rng.standard_normal((5, 4) if tb else (4, 5)).astype(np.float32)
    want = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b)
    got = gemm(jt.array(a), jt.array(b), ta, tb).numpy()
    assert got.shape == (6, 5)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_gemm_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="inner sizes differ"):
        gemm(jt.zeros((3, 4)), jt.zeros((5, 2)))
    with pytest.raises(ValueError, match="2-D"):
        gemm(jt.zeros((3, 4, 1)), jt.zeros((4, 2)))


@pytest.mark.parametrize("dims, np_axes", [
    ((0, 3, 1, 2), (0, 3, 1, 2)),        # NHWC -> NCHW: moves the last axis
    (([0, 2, 3, 1],), (0, 2, 3, 1)),     # a list, like Var.permute([..])
    ((1, 3), (0, 3, 2, 1)),              # two axes swapped, like jt.transpose(x, a, b)
    ((), (3, 2, 1, 0)),                  # no axes: reversed
    ((-1, 0, 1, 2), (3, 0, 1, 2)),       # negative axes
])
def test_transpose_on_device_matches_numpy_with_gradient(dims, np_axes):
    x = np.random.randn(2, 3, 4, 5).astype(np.float32)
    xv = jt.array(x)
    out = transpose_on_device(xv, *dims)
    np.testing.assert_array_equal(out.numpy(), x.transpose(np_axes))
    w = np.random.randn(*out.shape).astype(np.float32)
    grad = jt.grad((out * jt.array(w)).sum(), xv).numpy()
    np.testing.assert_array_equal(grad, w.transpose(np.argsort(np_axes)))  # inverse permutation


def test_transpose_on_device_rejects_a_non_permutation():
    with pytest.raises(ValueError, match="not a permutation"):
        transpose_on_device(jt.zeros((2, 3, 4)), 0, 1, 1)


@pytest.mark.parametrize("fused", [False, True])
def test_transpose_takes_the_fused_op_where_the_runtime_says(fused, monkeypatch):
    """backend.blas.transpose: Jittor's transpose, or (a GPU run without cuTT) the fused op;
    the same values and gradients either way."""
    monkeypatch.setitem(runtime._state, "fused_transposes", fused)
    calls = []
    monkeypatch.setattr(blas, "transpose_on_device", lambda x, *d: calls.append(d) or transpose_on_device(x, *d))
    x = np.random.randn(2, 3, 4).astype(np.float32)
    xv = jt.array(x)
    out = transpose(xv, 0, 2, 1)
    np.testing.assert_array_equal(out.numpy(), x.transpose(0, 2, 1))
    w = np.random.randn(2, 4, 3).astype(np.float32)
    np.testing.assert_array_equal(jt.grad((out * jt.array(w)).sum(), xv).numpy(), w.transpose(0, 2, 1))
    np.testing.assert_array_equal(transpose(jt.array(x[0])).numpy(), x[0].T)
    assert calls == ([(0, 2, 1), ()] if fused else [])

