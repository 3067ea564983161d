"""backend/cublaslt.py: finding cuBLASLt, the references of its self-check, the models' fallback
on the CPU; on a GPU the ops against NumPy and a NeRF against Jittor's matmul.

GPU part: `bash bench/device_run.sh tests tests/test_cublaslt.py` (the tests marked on_gpu).
"""
import numpy as np
import pytest

from conftest import jt
from backend import cublaslt, runtime
from models import layers
from models.nerf import NeRF
from models.style_mlp import StyleMLP

on_gpu = pytest.mark.skipif(not runtime.use_cuda(), reason="cuBLASLt ops run on the GPU only")


# ---------------------------------------------------------------- finding, compute type
def test_math_follows_matmul_flag_unless_set(monkeypatch):
    monkeypatch.setitem(cublaslt._math, "type", None)
    monkeypatch.setattr(jt.flags, "use_tensorcore", 1)
    assert cublaslt.math_mode() == "tf32"
    monkeypatch.setattr(jt.flags, "use_tensorcore", 0)
    assert cublaslt.math_mode() == "fp32"
    cublaslt.set_math("tf32")
    assert cublaslt.math_mode() == "tf32"
    with pytest.raises(ValueError, match="cuBLASLt math must be one of"):
        cublaslt.set_math("int8")


def _fake_cublas(root, major=13, lib_name=None):
    inc, lib = root / "include", root / "lib"
    inc.mkdir()
    lib.mkdir()
    (inc / "cublasLt.h").write_text("#include <cublas_api.h>\n")
    (inc / "cublas_api.h").write_text(f"#define CUBLAS_VER_MAJOR {major}\n")
    (lib / (lib_name or f"libcublasLt.so.{major}")).write_bytes(b"")
    return inc, lib


def _only_env_dirs(monkeypatch, inc, lib):
    monkeypatch.setattr(cublaslt, "INCLUDE_DIRS", [])
    monkeypatch.setattr(cublaslt, "LIB_DIRS", [])
    monkeypatch.setattr(cublaslt, "_pip_dirs", lambda: [])
    monkeypatch.setattr(cublaslt, "_toolkit_dirs", lambda: [])
    monkeypatch.setattr(cublaslt, "_loaded_cublaslt", lambda: None)
    monkeypatch.setenv("CUBLASLT_INCLUDE_DIR", str(inc))
    monkeypatch.setenv("CUBLASLT_LIB_DIR", str(lib))


def test_find_pairs_header_and_library_of_one_major(tmp_path, monkeypatch):
    inc, lib = _fake_cublas(tmp_path)
    _only_env_dirs(monkeypatch, inc, lib)
    assert cublaslt.find_header() == str(inc / "cublasLt.h")
    assert cublaslt.find() == (str(inc / "cublasLt.h"), str(lib / "libcublasLt.so.13"), "13")
    monkeypatch.setattr(cublaslt, "_loaded_cublaslt", lambda: "/opt/x/libcublasLt.so.13.1")
    assert cublaslt.find()[1] == "/opt/x/libcublasLt.so.13.1"  # the one already in the process
    monkeypatch.setattr(cublaslt, "_loaded_cublaslt", lambda: "/opt/x/libcublasLt.so.12")
    assert cublaslt.find()[1] == str(lib / "libcublasLt.so.13")  # not another major's
    (lib / "libcublasLt.so.13").rename(lib / "libcublasLt.so.12")
    monkeypatch.setattr(cublaslt, "_loaded_cublaslt", lambda: None)
    assert cublaslt.find() is None  # a CUDA 13 header with only a CUDA 12 library: no
    monkeypatch.setenv("CUBLASLT_INCLUDE_DIR", str(tmp_path / "nowhere"))
    assert cublaslt.find_header() is None and cublaslt.find() is None


# ---------------------------------------------------------------- references, CPU behaviour
@pytest.mark.parametrize("relu", [False, True])
def test_reference_matches_autograd(relu):
    """The NumPy reference that the GPU self-check compares cuBLASLt with is right (checked here
    against Jittor's own matmul and autograd on the CPU)."""
    rng = np.random.default_rng(2)
    x, w, b, g = (rng.standard_normal(s).astype(np.float32) for s in ((9, 7), (5, 7), (5,), (9, 5)))
    xv, wv, bv = jt.array(x), jt.array(w), jt.array(b)
    y = jt.matmul(xv, wv.transpose()) + bv
    y = jt.nn.relu(y) if relu else y
    gx, gw, gb = jt.grad((y * jt.array(g)).sum(), [xv, wv, bv])
    for got, want in zip((y, gx, gw, gb), cublaslt.reference(x, w, b, g, relu)):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-4)


def test_self_check_holds_inside_no_grad(monkeypatch):
    """The first layer of a run can come inside no_grad (rendering); the check must still
    compare real gradients. On the CPU with Jittor's matmul in cuBLASLt's place it passes
    outside and inside no_grad, and still catches a wrong bias gradient."""
    def jittor_linear(x, w, b, relu):
        y = jt.matmul(x, w.transpose()) + b
        return jt.nn.relu(y) if relu else y
    monkeypatch.setattr(cublaslt, "linear", jittor_linear)
    cublaslt._smoke_test(["fp32"])
    with jt.no_grad():
        cublaslt._smoke_test(["fp32"])
    monkeypatch.setattr(cublaslt, "linear", lambda x, w, b, relu: jittor_linear(x, w, b.stop_grad(), relu))
    with pytest.raises(RuntimeError, match="bias gradient differs from NumPy"):
        cublaslt._smoke_test(["fp32"])


def _fake_code(variant, shapes, inputs):
    """cuBLASLt's op variants as Jittor matmuls (CPU), to run _LinearLt's own backward logic."""
    if variant.startswith("fwd"):
        x, w = inputs[:2]
        y = jt.matmul(x, w.transpose()) + (inputs[2] if "bias" in variant else 0)
        return [jt.nn.relu(y) if "relu" in variant else y]
    if variant == "dgrad":
        g, w = inputs
        return [jt.matmul(g, w)]
    x, g = inputs  # wgrad, wgrad_bgrad
    return [jt.matmul(g.transpose(), x)] + ([g.sum(0)] if variant == "wgrad_bgrad" else [])


@pytest.mark.parametrize("mode", cublaslt.BIAS_GRAD_MODES)
@pytest.mark.parametrize("relu", [False, True])
def test_layer_backward_in_each_bias_gradient_mode(mode, relu, monkeypatch):
    """_LinearLt's backward (ReLU mask, the bias gradient by BGRADB or by the one-pass kernel of
    backend/reductions) with its cuBLASLt calls stood in for by Jittor matmuls, against NumPy."""
    monkeypatch.setattr(cublaslt, "_code", _fake_code)
    monkeypatch.setitem(cublaslt._state, "ok", True)
    monkeypatch.setitem(cublaslt._bias_grad, "mode", mode)
    rng = np.random.default_rng(7)
    x, w, b, g = (rng.standard_normal(s) for s in ((2100, 19), (13, 19), (13,), (2100, 13)))
    xv, wv, bv = (jt.array(a.astype(np.float32)) for a in (x, w, b))
    y = cublaslt.linear(xv, wv, bv, relu)
    got = [y] + list(jt.grad((y * jt.array(g.astype(np.float32))).sum(), [xv, wv, bv]))
    for a, want in zip(got, cublaslt.reference(x, w, b, g, relu, y_mask=y.numpy() > 0)):
        np.testing.assert_allclose(a.numpy(), want, rtol=1e-4, atol=1e-3)


def test_bias_gradient_mode_is_checked(monkeypatch):
    with pytest.raises(ValueError, match="--cublaslt_bgrad must be one of kernel, epilogue"):
        cublaslt.set_bias_grad_mode("atomics")


def test_check_shapes_cover_the_models_layers():
    widths = {(i, o) for _, i, o, _ in cublaslt.CHECK_SHAPES}
    for model in (NeRF(), StyleMLP()):
        for _, m in model.named_modules():
            if isinstance(m, layers.Linear):
                assert (m.weight.shape[1], m.weight.shape[0]) in widths
    assert any(i % 4 for _, i, _, _ in cublaslt.CHECK_SHAPES)  # unaligned leading dimensions too


def test_linear_checks_its_arguments():
    w, b = jt.zeros((4, 6)), jt.zeros((4,))
    with pytest.raises(ValueError, match="does not fit weight"):
        cublaslt.linear(jt.zeros((3, 5)), w, b)
    with pytest.raises(ValueError, match="bias"):
        cublaslt.linear(jt.zeros((3, 6)), w, jt.zeros((3,)))
    with pytest.raises(ValueError, match="float32"):
        cublaslt.linear(jt.zeros((3, 6), "float64"), w, b)


@pytest.mark.skipif(runtime.use_cuda(), reason="a CPU run")
def test_not_used_on_the_cpu(monkeypatch):
    assert cublaslt.available(log=lambda *_: None) is False
    assert cublaslt.unavailable_reason() == "not a GPU run"
    with pytest.raises(RuntimeError, match="cuBLASLt linear layers are not available"):
        cublaslt.linear(jt.zeros((3, 6)), jt.zeros((4, 6)), jt.zeros((4,)))
    monkeypatch.setattr(layers, "LINEAR_IMPL", "cublaslt")
    monkeypatch.setattr(layers, "_fallback_logged", [])
    said = []
    assert layers.linear_impl(log=said.append) == "jittor"
    assert layers.linear_impl(log=said.append) == "jittor"
    assert said == []  # the default product: falling back on the CPU is the rule, not news


def test_fallback_on_a_gpu_is_said_once(monkeypatch):
    """Where a GPU run cannot use cuBLASLt, one line says why and Jittor's matmul takes over."""
    monkeypatch.setattr(layers, "LINEAR_IMPL", "cublaslt")
    monkeypatch.setattr(layers, "_fallback_logged", [])
    monkeypatch.setattr(layers.runtime, "use_cuda", lambda: True)
    monkeypatch.setattr(cublaslt, "available", lambda log=print: False)
    monkeypatch.setattr(cublaslt, "unavailable_reason", lambda: "no cublasLt.h found")
    said = []
    assert layers.linear_impl(log=said.append) == "jittor"
    assert layers.linear_impl(log=said.append) == "jittor"
    assert len(said) == 1 and "no cublasLt.h found" in said[0] and "Jittor's matmul" in said[0]


def test_defaults_are_the_fastest_measured(monkeypatch):
    """--gemm cublaslt with the bias gradients in ReLU's mask pass: 17.0 ms a NeRF step on the
    H200 against 19.9 ms (BGRADB epilogue) and 22.2 ms (Jittor's matmul), measured 2026-12-03."""
    from core.config import parse_args
    args = parse_args([])
    assert cublaslt.bias_grad_mode() == "kernel" and args.cublaslt_bgrad == "kernel"
    assert args.gemm == "cublaslt"


def _same_models_under(monkeypatch, impl_a, impl_b, rtol, atol, seed=0):
    """NeRF (D=8, W=256) and StyleMLP outputs and parameter gradients under two Linear impls."""
    rng = np.random.default_rng(seed)
    x = jt.array(rng.standard_normal((300, 63)).astype(np.float32))
    d = jt.array(rng.standard_normal((300, 27)).astype(np.float32))
    lat = jt.array(rng.standard_normal((300, 32)).astype(np.float32))
    nerf, style = NeRF(), StyleMLP()
    results = []
    for impl in (impl_a, impl_b):
        monkeypatch.setattr(layers, "LINEAR_IMPL", impl)
        rgb, sigma = nerf(x, d)
        rgb_s = style(x, lat)
        loss = (rgb * rgb).sum() + sigma.sum() + (rgb_s * rgb_s).sum()
        params = [p for p in nerf.parameters() + style.parameters()]
        grads = jt.grad(loss, params)
        results.append([rgb.numpy(), sigma.numpy(), rgb_s.numpy()] + [g.numpy() for g in grads])
    for a, b in zip(*results):
        scale = max(np.abs(b).max(), 1e-6)
        np.testing.assert_allclose(a / scale, b / scale, rtol=rtol, atol=atol)


@pytest.mark.skipif(runtime.use_cuda(), reason="a CPU run")
def test_models_fall_back_to_jittor_on_the_cpu(monkeypatch):
    monkeypatch.setattr(layers, "_fallback_logged", [True])  # quiet
    _same_models_under(monkeypatch, "cublaslt", "jittor", rtol=0, atol=0)


@pytest.mark.skipif(runtime.use_cuda(), reason="a CPU run (exact float32 products)")
def test_models_under_the_cublas_layer_match_jittor(monkeypatch):
    """The "cublas" layer's hand-written backward (bias gradients in ReLU's mask pass) gives
    the whole NeRF and style MLP the gradients of Jittor's autograd."""
    _same_models_under(monkeypatch, "cublas", "jittor", rtol=1e-4, atol=1e-5)


def _np_relu(a):
    return np.maximum(a, 0)


def _np_sigmoid(a):
    return 1 / (1 + np.exp(-a))


def _np_linear(layer, h):
    return h @ layer.weight.numpy().astype(np.float64).T + layer.bias.numpy().astype(np.float64)


@pytest.mark.parametrize("impl", ["jittor", "cublas", "cublaslt"])
def test_nerf_and_style_mlp_with_relu_helper_match_the_formula(impl, monkeypatch):
    """A 2-layer NeRF with view directions and a 2-hidden-layer StyleMLP against NumPy."""
    monkeypatch.setattr(layers, "LINEAR_IMPL", impl)
    monkeypatch.setattr(layers, "_fallback_logged", [True])
    rng = np.random.default_rng(5)
    x, d, lat = (rng.standard_normal((11, c)) for c in (6, 4, 3))
    nerf = NeRF(D=2, W=8, input_ch=6, input_ch_views=4, skips=())
    rgb, sigma = nerf(*(jt.array(a.astype(np.float32)) for a in (x, d)))
    h = _np_relu(_np_linear(nerf.pts_linears[1], _np_relu(_np_linear(nerf.pts_linears[0], x))))
    feature = _np_linear(nerf.feature_linear, h)
    hv = _np_relu(_np_linear(nerf.views_linear, np.concatenate([feature, d], -1)))
    np.testing.assert_allclose(sigma.numpy(), _np_linear(nerf.alpha_linear, h)[:, 0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(rgb.numpy(), _np_sigmoid(_np_linear(nerf.rgb_linear, hv)), rtol=1e-4, atol=1e-5)
    style = StyleMLP(D=3, W=8, input_ch=6, latent_dim=3, skips=())
    got = style(jt.array(x.astype(np.float32)), jt.array(lat.astype(np.float32))).numpy()
    h = _np_relu(_np_linear(style.hidden[0], np.concatenate([x, lat], -1)))
    h = _np_relu(_np_linear(style.hidden[1], np.concatenate([h, lat], -1)))
    want = _np_sigmoid(_np_linear(style.out_linear, np.concatenate([h, lat], -1)))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- GPU
@on_gpu
def test_gpu_cublaslt_passes_its_check():
    assert cublaslt.available(), cublaslt.unavailable_reason()


def _need_cublaslt():
    if not cublaslt.available():
        pytest.skip(cublaslt.unavailable_reason())


@on_gpu
@pytest.mark.parametrize("n,i,o,relu", cublaslt.CHECK_SHAPES + [(1000, 283, 128, True), (4097, 63, 256, True)])
def test_gpu_linear_matches_numpy(n, i, o, relu, monkeypatch):
    """Forward and the three gradients in fp32 math, every model width and some odd sizes."""
    _need_cublaslt()
    monkeypatch.setitem(cublaslt._math, "type", "fp32")
    errs = cublaslt._relative_errors(n, i, o, relu, seed=n + i + o)
    assert max(errs.values()) < 1e-4, errs


@on_gpu
def test_gpu_linear_keeps_leading_dims_and_runs_in_tf32(monkeypatch):
    _need_cublaslt()
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((2, 5, 63)), rng.standard_normal((20, 63)) / 8, rng.standard_normal(20)
    monkeypatch.setitem(cublaslt._math, "type", "tf32")
    y = cublaslt.linear(*(jt.array(a.astype(np.float32)) for a in (x, w, b)), relu=True).numpy()
    np.testing.assert_allclose(y, np.maximum(x @ w.T + b, 0), rtol=1e-2, atol=1e-2)


@on_gpu
def test_gpu_nerf_with_cublaslt_matches_jittor(monkeypatch):
    """NeRF (D=8, W=256) and StyleMLP forward + parameter gradients, cuBLASLt (TF32) vs Jittor's
    matmul (fp32 in the tests): within TF32's error."""
    _need_cublaslt()
    monkeypatch.setitem(cublaslt._math, "type", "tf32")
    _same_models_under(monkeypatch, "cublaslt", "jittor", rtol=0, atol=2e-2)
