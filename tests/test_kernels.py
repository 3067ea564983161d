"""backend/kernels.py: the templates' row view, and the GPU self-check of the kernels that have a
plain-Jittor formula (run here with the CPU sources, as if on a GPU)."""
import jittor as jt
import numpy as np

from backend import kernels, reductions
from backend.kernels import as_rows


def test_as_rows_flattens_the_leading_axes():
    x = jt.array(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    rows, lead = as_rows(x)
    assert lead == (2, 3) and rows.shape == (6, 4)
    np.testing.assert_array_equal(rows.numpy(), np.arange(24).reshape(6, 4))
    rows, lead = as_rows(jt.array(np.arange(5, dtype=np.float32)))
    assert lead == () and rows.shape == (1, 5)


def test_templates_run_their_body_once_per_element_and_per_row():
    """The CPU sources of both templates, compiled by Jittor (their CUDA sources share the body)."""
    cpu, cuda = kernels.elementwise_kernel("out0_p[i] = in0_p[i] * 2 + i;", "twice", ndim=2)
    assert "__global__ static void twice" in cuda and "twice<<<" in cuda
    x = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    got = jt.code(x.shape, "float32", [jt.array(x)], cpu_src=cpu, cuda_src=cuda).numpy()
    np.testing.assert_allclose(got, x * 2 + np.arange(15).reshape(3, 5), rtol=1e-6)
    big = np.random.default_rng(2).standard_normal((300, 100)).astype(np.float32)  # over the cores
    got = jt.code(big.shape, "float32", [jt.array(big)], cpu_src=cpu, cuda_src=cuda).numpy()
    np.testing.assert_allclose(got, big * 2 + np.arange(30000).reshape(300, 100), rtol=1e-6)
    body = "double s = 0; for (long long j = 0; j < in0_shape1; j++) s += in0_p[r * in0_shape1 + j]; out0_p[r] = s;"
    cpu, cuda = kernels.per_row_kernel(body, "row_total", "in0_shape0")
    got = jt.code((3,), "float32", [jt.array(x)], cpu_src=cpu, cuda_src=cuda).numpy()
    np.testing.assert_allclose(got, x.astype(np.float64).sum(1), rtol=1e-5, atol=1e-6)
    # over the CPU's cores (rows past the threshold): every row written, the same totals
    many = np.random.default_rng(1).standard_normal((40000, 3)).astype(np.float32)
    cpu, _ = kernels.per_row_kernel(body, "row_total", "in0_shape0", cpu_parallel=True)
    assert cpu.startswith("#pragma omp parallel for")
    got = jt.code((40000,), "float32", [jt.array(many)], cpu_src=cpu).numpy()
    np.testing.assert_allclose(got, many.astype(np.float64).sum(1), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- GPU self-check of the kernels
def test_kernels_pass_their_self_check(monkeypatch):
    """The check the GPU runs before first use, here on the kernels' CPU sources: all agree."""
    monkeypatch.setattr(kernels, "_on_gpu", lambda: True)
    monkeypatch.setattr(kernels, "_kernel_state", {})
    lines = []
    assert set(kernels._KERNEL_CHECKS) == {"row_mean_var", "row_sums", "relu_grad_bias_sums"}
    for name in kernels._KERNEL_CHECKS:
        assert kernels.kernel_ok(name, log=lines.append), name
    assert lines == []


def test_a_wrong_or_failing_kernel_is_replaced_by_its_formula(monkeypatch):
    monkeypatch.setattr(kernels, "_on_gpu", lambda: True)
    monkeypatch.setattr(kernels, "_kernel_state", {})
    checks = dict(kernels._KERNEL_CHECKS)
    _, formula, make = checks["row_sums"]
    checks["row_sums"] = (lambda x: formula(x) * 1.01, formula, make)  # 1% off

    def broken(*args):
        raise RuntimeError("Wrong inputs arguments ... Failed reason: nvcc: kernel did not compile")
    _, formula_mv, make_mv = checks["row_mean_var"]
    checks["row_mean_var"] = (broken, formula_mv, make_mv)
    monkeypatch.setattr(kernels, "_KERNEL_CHECKS", checks)
    monkeypatch.setattr(reductions, "_row_sums_kernel", checks["row_sums"][0])
    monkeypatch.setattr(reductions, "_row_mean_var_kernel", broken)
    lines = []
    assert not kernels.kernel_ok("row_sums", log=lines.append)
    assert not kernels.kernel_ok("row_mean_var", log=lines.append)
    assert "row_sums" in lines[0] and "differs from its Jittor formula" in lines[0]
    assert "row_mean_var" in lines[1] and "did not compile" in lines[1]
    # the wrappers now give the formula's (right) values
    x = np.random.default_rng(4).standard_normal((3, 50)).astype(np.float32)
    np.testing.assert_allclose(reductions.row_sums(jt.array(x)).numpy(), x.sum(1), rtol=1e-5, atol=1e-5)
    mean, var = reductions.row_mean_var(jt.array(x))
    np.testing.assert_allclose(var.numpy(), x.var(1, ddof=1), rtol=1e-4, atol=1e-5)
    assert kernels.kernel_ok("row_sums", log=lines.append) is False and len(lines) == 2  # decided once


def test_backward_helpers_never_run_the_check(monkeypatch):
    """In a backward the check's fetch is not safe (kernel_ok): an undecided kernel is not used
    there and stays undecided; the formula gives the right values."""
    monkeypatch.setattr(kernels, "_on_gpu", lambda: True)
    monkeypatch.setattr(kernels, "_kernel_state", {})
    checked = []
    checks = {name: (kernel, formula, lambda make=make, name=name: checked.append(name) or make())
              for name, (kernel, formula, make) in kernels._KERNEL_CHECKS.items()}
    monkeypatch.setattr(kernels, "_KERNEL_CHECKS", checks)
    rng = np.random.default_rng(5)
    g, y = (rng.standard_normal((70, 9)).astype(np.float32) for _ in range(2))
    gp, db = reductions.relu_grad_bias_sums(jt.array(g), jt.array(y))
    np.testing.assert_allclose(gp.numpy(), g * (y > 0), rtol=1e-6)
    np.testing.assert_allclose(db.numpy(), (g * (y > 0)).sum(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(reductions.row_sums(jt.array(g)).numpy(), g.sum(1), rtol=1e-4, atol=1e-5)
    assert checked == [] and kernels._kernel_state == {}
    assert kernels.kernel_ok("row_sums") and checked == ["row_sums"]  # a forward-time call decides
    assert kernels.kernel_ok("row_sums", check=False)


def test_mean_var_last_decides_its_kernel_before_its_function(monkeypatch):
    monkeypatch.setattr(kernels, "_on_gpu", lambda: True)
    monkeypatch.setattr(kernels, "_kernel_state", {})
    x = jt.array(np.random.default_rng(6).standard_normal((2, 3, 40)).astype(np.float32))
    reductions.mean_var_last(x)  # graph built, nothing fetched by the caller
    assert kernels._kernel_state == {"row_mean_var": True}
