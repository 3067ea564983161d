"""backend/runtime.py: the CUDA 13 header patch and the CPU set-up."""
import os

from backend import runtime

HEADER = """#pragma once
inline int gpuDeviceInit(int devID) {
  cudaDeviceProp deviceProp;
  checkCudaErrors(cudaGetDeviceProperties(&deviceProp, devID));
  if (deviceProp.computeMode == cudaComputeModeProhibited) { return -1; }
  return devID;
}
inline int best() {
  int current_device = 0; cudaDeviceProp deviceProp;
  cudaGetDeviceProperties(&deviceProp, current_device);
  uint64_t perf = deviceProp.multiProcessorCount * deviceProp.clockRate;
  return perf;
}
"""


def test_patch_rewrites_removed_fields_once(tmp_path):
    path = tmp_path / "helper_cuda.h"
    path.write_text(HEADER)
    assert runtime.patch_helper_cuda(str(path)) is True
    text = path.read_text()
    assert "deviceProp.computeMode" not in text and "deviceProp.clockRate" not in text
    assert "stylenerf_dev_attr(cudaDevAttrComputeMode, devID)" in text
    assert "stylenerf_dev_attr(cudaDevAttrClockRate, current_device)" in text
    # the helper is defined before its first use
    assert text.index("static inline int stylenerf_dev_attr") < text.index("gpuDeviceInit")
    assert (tmp_path / "helper_cuda.h.orig").read_text() == HEADER
    # idempotent
    assert runtime.patch_helper_cuda(str(path)) is False
    assert path.read_text() == text


def test_patch_of_installed_header_is_well_formed(tmp_path):
    src = os.path.join(runtime.jittor_src_dir(), "extern", "cuda", "inc", "helper_cuda.h")
    original = open(src + ".orig").read() if os.path.exists(src + ".orig") else open(src).read()
    path = tmp_path / "h.h"
    path.write_text(original)
    runtime.patch_helper_cuda(str(path))
    text = path.read_text()
    assert "deviceProp.computeMode" not in text and "deviceProp.clockRate" not in text
    assert text.count("{") == original.count("{") + 1


def test_setup_matches_the_machine():
    # auto: CUDA exactly when a GPU is present (CI and development machines have none);
    # scripts/test.sh forces the CPU with STYLENERF_DEVICE=cpu
    forced = os.environ.get("STYLENERF_DEVICE", "auto")
    expect = runtime._gpu_present() if forced == "auto" else forced == "cuda"
    assert runtime.use_cuda() is expect
    assert ("CUDA" if expect else "CPU") in runtime.summary()


def test_numpy2_patch_moves_elsize_behind_64bit_flags(tmp_path):
    src = os.path.join(runtime.jittor_src_dir(), "src", "pyjt", "numpy.h")
    original = open(src + ".orig").read() if os.path.exists(src + ".orig") else open(src).read()
    path = tmp_path / "numpy.h"
    path.write_text(original)
    assert runtime.patch_numpy_header(str(path)) is True
    text = path.read_text()
    body = text[text.index("struct PyArrayDescr_Proxy"):text.index("};", text.index("struct PyArrayDescr_Proxy"))]
    # NumPy 2: ... int type_num; npy_uint64 flags; npy_intp elsize; npy_intp alignment; ...
    assert body.index("int type_num") < body.index("unsigned long long") < body.index("Py_ssize_t elsize")
    assert "int elsize" not in body
    assert runtime.patch_numpy_header(str(path)) is False
    assert (tmp_path / "numpy.h.orig").read_text() == original


def test_jittor_numpy_roundtrip_is_exact():
    import numpy as np
    import jittor as jt
    for dtype in (np.float32, np.int32, np.uint8, np.float64):
        x = (np.arange(24).reshape(2, 3, 4) * 3).astype(dtype)
        np.testing.assert_array_equal(jt.array(x).numpy(), x)


def test_set_matmul_checks_the_mode():
    import pytest
    runtime.set_matmul("tf32")  # accepted (no effect on the CPU)
    with pytest.raises(ValueError, match="--matmul"):
        runtime.set_matmul("int8")


def test_gpu_transpose_patch_installs_once_and_keeps_results(monkeypatch):
    # what setup() does on a GPU without cuTT, here on the CPU (monkeypatch restores Jittor after)
    import numpy as np
    import jittor as jt
    from backend.blas import transpose_on_device
    for obj, name in ((jt, "transpose"), (jt, "permute"), (jt.Var, "transpose"), (jt.Var, "permute")):
        monkeypatch.setattr(obj, name, getattr(obj, name))
    assert runtime._transposes_on_device(jt) is True
    assert runtime._transposes_on_device(jt) is False
    assert jt.Var.permute is transpose_on_device and jt.transpose is transpose_on_device
    x = np.random.randn(2, 3, 4).astype(np.float32)
    np.testing.assert_array_equal(jt.array(x).permute(2, 0, 1).numpy(), x.transpose(2, 0, 1))
    np.testing.assert_array_equal(jt.array(x).transpose(0, 2).numpy(), x.transpose(2, 1, 0))


def test_summary_names_the_matmul_precision_in_force(monkeypatch):
    # on the GPU a benchmark run with --matmul fp32 must not report "TF32 matmul" (session 10's
    # fp32 run did, from the set-up line); the CPU has no matmul modes, so none is named
    import jittor as jt
    assert "matmul" not in runtime.summary() or runtime.use_cuda()
    flag = jt.flags.use_tensorcore
    monkeypatch.setitem(runtime._state, "use_cuda", True)
    monkeypatch.setitem(runtime._state, "matmul", runtime._state["matmul"])  # restored after
    try:
        runtime.set_matmul("fp32")
        assert "FP32 matmul" in runtime.summary() and "TF32" not in runtime.summary()
        runtime.set_matmul("bf16")
        assert "BF16 matmul" in runtime.summary()
    finally:
        jt.flags.use_tensorcore = flag
