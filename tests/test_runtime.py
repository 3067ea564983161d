"""backend/runtime.py: the set-up on this machine, the GPU matmul modes and the summary line."""
import os

from backend import runtime


def test_setup_matches_the_machine():
    # auto: CUDA exactly when a GPU is present (CI and development machines have none);
    # scripts/test.sh forces the CPU with STYLENERF_DEVICE=cpu
    forced = os.environ.get("STYLENERF_DEVICE", "auto")
    expect = runtime._gpu_present() if forced == "auto" else forced == "cuda"
    assert runtime.use_cuda() is expect
    assert ("CUDA" if expect else "CPU") in runtime.summary()
    # Jittor's own transpose of the last axis is a CPU op on a GPU run without cuTT
    assert runtime.fused_transposes() is (expect and os.environ.get("use_cutt") == "0")


def test_set_matmul_checks_the_mode():
    import pytest
    runtime.set_matmul("tf32")  # accepted (no effect on the CPU)
    with pytest.raises(ValueError, match="--matmul"):
        runtime.set_matmul("int8")


def test_summary_names_the_matmul_precision_in_force(monkeypatch):
    # on the GPU a benchmark run with --matmul fp32 must not report "TF32 matmul" (an fp32 run on
    # 2026-12-03 did, from the set-up line); the CPU has no matmul modes, so none is named
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


def test_project_calls_no_jittor_op_that_needs_cub():
    """Jittor runs these through cub on the GPU, which does not build on CUDA 13 (runtime.py):
    a call in the project's code works on the CPU in every test and fails only on the GPU, as
    jt.argmax in the renderer did.  render.renderer.row_argmax stands in for argmax."""
    import re
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cub_ops = re.compile(r"\bjt\.(argmax|argmin|argsort|sort|cumsum|cumprod|topk|unique|masked_select)\(")
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("logs", "tests", "__pycache__")]
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as f:
                    for number, line in enumerate(f, 1):
                        if cub_ops.search(line.split("#")[0]):
                            found.append(f"{os.path.relpath(path, root)}:{number}: {line.strip()}")
    assert not found, "Jittor ops that need cub on the GPU:\n" + "\n".join(found)
