"""backend/cudnn.py: finding cuDNN, the ops' sources, the NumPy references of its self-check.

The ops run only on a GPU: there (`bash bench/device_run.sh tests tests/test_cudnn.py`) the last
tests compare them with NumPy; on the CPU the parts that decide whether they are used, and the
references they are checked against, are tested.
"""
import os
import shutil
import subprocess

import numpy as np
import pytest

from conftest import jt
from backend import cudnn, runtime
from models import layers

on_gpu = pytest.mark.skipif(not runtime.use_cuda(), reason="cuDNN ops run on the GPU only")


def _fake_cudnn(root, major=9, lib_name=None):
    inc, lib = root / "include", root / "lib"
    inc.mkdir()
    lib.mkdir()
    (inc / "cudnn.h").write_text('#include "cudnn_version.h"\n')
    (inc / "cudnn_version.h").write_text(f"#define CUDNN_MAJOR {major}\n#define CUDNN_MINOR 14\n"
                                         f"#define CUDNN_PATCHLEVEL 0\n")
    (lib / (lib_name or f"libcudnn.so.{major}")).write_bytes(b"")
    return inc, lib


def test_find_reads_the_folders_and_version(tmp_path, monkeypatch):
    inc, lib = _fake_cudnn(tmp_path)
    monkeypatch.setattr(cudnn, "INCLUDE_DIRS", [])
    monkeypatch.setattr(cudnn, "LIB_DIRS", [])
    monkeypatch.setattr(cudnn, "_pip_cudnn_dir", lambda: None)
    monkeypatch.setenv("CUDNN_INCLUDE_DIR", str(inc))
    monkeypatch.setenv("CUDNN_LIB_DIR", str(lib))
    assert cudnn.find() == (str(inc / "cudnn.h"), str(lib / "libcudnn.so.9"), "9.14.0")
    (lib / "libcudnn.so.9").unlink()
    assert cudnn.find() is None  # a header without its library is no cuDNN


def test_find_rejects_cudnn_7_and_missing_headers(tmp_path, monkeypatch):
    inc, lib = _fake_cudnn(tmp_path, major=7)
    monkeypatch.setattr(cudnn, "INCLUDE_DIRS", [])
    monkeypatch.setattr(cudnn, "LIB_DIRS", [])
    monkeypatch.setattr(cudnn, "_pip_cudnn_dir", lambda: None)
    monkeypatch.setenv("CUDNN_INCLUDE_DIR", str(inc))
    monkeypatch.setenv("CUDNN_LIB_DIR", str(lib))
    assert cudnn.find() is None
    monkeypatch.setenv("CUDNN_INCLUDE_DIR", str(tmp_path / "nowhere"))
    assert cudnn.find() is None


def test_sources_fill_in_header_and_math_and_avoid_jittor_macros():
    header, fwd, bwd_data, bwd_filter = cudnn.sources("/x/cudnn.h", "tf32")
    assert '#include "/x/cudnn.h"' in header
    assert all("CUDNN_DEFAULT_MATH" in s and "MATH_TYPE" not in s for s in (fwd, bwd_data, bwd_filter))
    assert "CUDNN_FMA_MATH" in cudnn.sources("/x/cudnn.h", "fp32")[1]
    # '@' starts a macro in Jittor's code-op preprocessor; '«' separates its key fields
    assert not any(ch in s for s in (header, fwd, bwd_data, bwd_filter) for ch in "@«")
    assert "cudnnConvolutionForward(" in fwd and "cudnnConvolutionBackwardData(" in bwd_data
    assert "cudnnConvolutionBackwardFilter(" in bwd_filter
    # the algorithm choice: timed by cudnnFind* (default) or the heuristics only
    assert "#define SN_SEARCH 1" in header and "SEARCH_ON" not in header
    assert "#define SN_SEARCH 0" in cudnn.sources("/x/cudnn.h", "tf32", False)[0]
    assert "cudnnFindConvolutionForwardAlgorithm(" in fwd and "cudnnGetConvolutionForwardAlgorithm_v7(" in fwd
    assert "cudnnFindConvolutionBackwardDataAlgorithm(" in bwd_data
    assert "cudnnFindConvolutionBackwardFilterAlgorithm(" in bwd_filter


def test_reference_gradients_match_autograd():
    """The references the GPU self-check compares cuDNN with are right (checked here against
    Jittor's own convolution and autograd on the CPU)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    g = rng.standard_normal((2, 4, 5, 4)).astype(np.float32)
    xv, wv = jt.array(x), jt.array(w)
    y = jt.nn.conv2d(xv, wv)
    gx, gw = jt.grad((y * jt.array(g)).sum(), [xv, wv])
    for got, want in zip((y, gx, gw), cudnn.reference(x, w, g)):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-4)


def test_self_check_holds_inside_no_grad(monkeypatch):
    """The first convolution of a run can come inside no_grad (stylized targets); the check
    must still compare real gradients (on the GPU it once rejected cuDNN there). Run on the CPU
    with Jittor's convolution in cuDNN's place: it must pass both outside and inside no_grad."""
    monkeypatch.setattr(cudnn, "valid_conv", lambda x, w: jt.nn.conv2d(x, w))
    cudnn._smoke_test()
    with jt.no_grad():
        cudnn._smoke_test()
    # and a wrong gradient is still caught
    monkeypatch.setattr(cudnn, "valid_conv", lambda x, w: jt.nn.conv2d(x, w).stop_grad() + 0 * x.sum())
    with pytest.raises(RuntimeError, match="input gradient differs from NumPy"):
        cudnn._smoke_test()


@pytest.mark.skipif(runtime.use_cuda(), reason="a CPU run")
def test_not_used_on_the_cpu():
    assert cudnn.available(log=lambda *_: None) is False
    assert layers.conv_impl() == "jittor"
    with pytest.raises(RuntimeError, match="cuDNN convolutions are not available"):
        cudnn.valid_conv(jt.zeros((1, 1, 3, 3)), jt.zeros((1, 1, 3, 3)))
    with pytest.raises(ValueError, match="--conv must be one of"):
        layers.set_conv_impl("winograd")


def _compile_env():
    nvcc = shutil.which("nvcc") or "/usr/local/cuda/bin/nvcc"
    found = cudnn.find()
    return (nvcc if os.path.isfile(nvcc) else None), (found[0] if found else None)


@pytest.mark.skipif(None in _compile_env(), reason="needs nvcc and cuDNN headers (cudnn.h, CUDNN_INCLUDE_DIR)")
def test_sources_compile_with_nvcc(tmp_path):
    """Where nvcc and cuDNN's headers exist, the host code of the three ops compiles as C++14
    (Jittor's CUDA standard) inside a stand-in for the op's run function (and for Jittor's
executor, whose allocator the ops take their workspace from)."""
    nvcc, header_path = _compile_env()
    header, *bodies = cudnn.sources(header_path)
    dims = lambda name: ", ".join(f"long long {name}_shape{i}" for i in range(4))  # noqa: E731
    args = ", ".join(f"float* {n}_p, {dims(n)}" for n in ("in0", "in1", "out0"))
    stub = ("#define SN_STANDALONE_CHECK\n#include <iostream>\n#include <cuda_runtime.h>\n#define LOGf std::cerr\n"
            "namespace jittor { struct Allocator { void* alloc(size_t, size_t&); void free(void*, size_t, size_t); };\n"
            "struct Executor { Allocator* temp_allocator; }; extern Executor exe; }\n")
    src = stub + header
    src += "namespace jittor {\n" + "".join(f"void run{i}({args}) {{\n{b}\n}}\n" for i, b in enumerate(bodies)) + "}\n"
    (tmp_path / "ops.cu").write_text(src)
    res = subprocess.run([nvcc, "-std=c++14", "-c", "ops.cu", "-o", "ops.o"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]


@on_gpu
def test_gpu_cudnn_passes_its_check():
    assert cudnn.available(), cudnn.unavailable_reason()


@on_gpu
@pytest.mark.parametrize("shape", [(2, 3, 9, 8, 5, 3), (1, 16, 33, 40, 8, 3), (3, 4, 6, 6, 2, 1)])
def test_gpu_conv_layer_matches_numpy(shape, monkeypatch):
    """conv2d_cudnn with reflection padding and bias, forward and gradients, fp32 math."""
    if not cudnn.available():
        pytest.skip(cudnn.unavailable_reason())
    b, c, h, w, o, k = shape
    rng = np.random.default_rng(sum(shape))
    x, wt = rng.standard_normal((b, c, h, w)), rng.standard_normal((o, c, k, k))
    bias, g = rng.standard_normal(o), rng.standard_normal((b, o, h, w))
    monkeypatch.setitem(cudnn._math, "type", "fp32")
    xv, wv, bv = (jt.array(a.astype(np.float32)) for a in (x, wt, bias))
    y = layers.conv2d_cudnn(xv, wv, bv, padding=k // 2)
    gx, gw, gb = jt.grad((y * jt.array(g.astype(np.float32))).sum(), [xv, wv, bv])
    p = k // 2
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), mode="reflect")
    ref_y, ref_gxp, ref_gw = cudnn.reference(xp, wt, g)
    ref_y += bias.reshape(1, -1, 1, 1)
    # the padded input's gradient folded back onto the input (mirror copies add up)
    ref_gx = np.zeros_like(x)
    rows = np.abs(np.arange(-p, h + p)); rows = np.where(rows > h - 1, 2 * (h - 1) - rows, rows)
    cols = np.abs(np.arange(-p, w + p)); cols = np.where(cols > w - 1, 2 * (w - 1) - cols, cols)
    for i, r in enumerate(rows):
        for j, cc in enumerate(cols):
            ref_gx[:, :, r, cc] += ref_gxp[:, :, i, j]
    for got, want in ((y, ref_y), (gx, ref_gx), (gw, ref_gw), (gb, g.sum((0, 2, 3)))):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-3)
