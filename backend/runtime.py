"""Jittor runtime set-up: the one module every entry point imports before Jittor.

`setup()` decides CPU or GPU, sets Jittor's environment flags *before* Jittor is
imported (they are read at import time), applies the changes to Jittor that 1.3.11
needs on a CUDA 13 / cuDNN 9 machine and with NumPy 2 (each listed with its reason in
backend/patches.py), and logs one line saying what it did.

Why each setting (see ../shared/reference/JITTOR_GPU.md for the measurements):
- Offline: Jittor downloads oneDNN ("mkl") on first use; with the `jittor-offline`
  package installed it finds the archive locally, otherwise we turn mkl off.
- CPU: an installed `nvcc` without a GPU makes Jittor try CUDA and fail, so
  `nvcc_path` is set to "" when no GPU is present.
- cuDNN 9 is not found by Jittor: `conv_opt=1` loads only cuBLAS and cuRAND; the
  project's own convolutions (models/layers.py, backend/cudnn.py) replace Jittor's.
- cub/CCCL 3 needs C++17 (Jittor builds CUDA as C++14), so cumsum/sort are
  unavailable on the GPU: the project's own `jt.code` kernels stand in where needed.
- cuTT is off (not available offline): Jittor then runs a transpose that moves the last
  axis on the CPU, so the project's transposes go through backend.blas.transpose, which
  uses Jittor's fused GPU transpose where fused_transposes() says so.
- After its core is (re)built Jittor prints "jit_utils updated, please rerun"
  and calls sys.exit(0); a throw-away subprocess import absorbs that.
"""
import importlib.util
import os
import shutil
import subprocess
import sys

from backend import patches

_state = {"done": False, "use_cuda": False, "fused_transposes": False, "matmul": "tf32", "where": "",
          "notes": []}


def _gpu_present():
    """True if an NVIDIA GPU and driver are visible (no CUDA context created)."""
    if os.path.exists("/proc/driver/nvidia/gpus") and os.listdir("/proc/driver/nvidia/gpus"):
        return True
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def _find_nvcc():
    for cand in (os.environ.get("nvcc_path"), shutil.which("nvcc"), "/usr/local/cuda/bin/nvcc"):
        if cand and os.path.isfile(cand):
            return cand
    return None


def _warm_import(env):
    """Import Jittor in a subprocess until it stops asking for a rerun."""
    code = "import jittor as jt; jt.flags.use_cuda = 1 if jt.has_cuda else 0; print('JT_OK', jt.has_cuda)"
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        if "JT_OK" in out.stdout:
            return out.stdout.strip().split()[-1] in ("1", "True"), (out.stdout + out.stderr)[-4000:]
        if "please rerun" not in (out.stdout + out.stderr):
            tail = (out.stdout + out.stderr)[-3000:]
            raise RuntimeError("Jittor failed to import on this machine:\n" + tail)
    raise RuntimeError("Jittor kept asking for a rerun after 3 tries")


def setup(device=None, tensorcore=True, quiet=False):
    """Configure and import Jittor once; returns the `jittor` module.

    device: "cpu", "cuda" or "auto" (default: env STYLENERF_DEVICE or "auto").
    tensorcore: allow TF32 in cuBLAS matmuls on the GPU (about 3e-4 relative error).
    """
    if _state["done"]:
        import jittor
        return jittor
    if "jittor" in sys.modules:
        raise RuntimeError("backend.runtime.setup() must run before the first `import jittor`")
    device = (device or os.environ.get("STYLENERF_DEVICE", "auto")).lower()
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"STYLENERF_DEVICE / --device must be cpu, cuda or auto, got {device!r}")
    want_cuda = device == "cuda" or (device == "auto" and _gpu_present())
    env = os.environ
    env.setdefault("log_silent", "1")
    notes = []
    if importlib.util.find_spec("jittor_offline") is None:
        env["use_mkl"] = "0"  # no offline oneDNN archive: do not try to download it
        notes.append("mkl off (no jittor-offline)")
    nvcc = _find_nvcc() if want_cuda else None
    if want_cuda and nvcc is None:
        if device == "cuda":
            raise RuntimeError("--device cuda asked for, but no nvcc was found (set nvcc_path)")
        want_cuda = False
        notes.append("GPU seen but no nvcc: CPU")
    if patches.numpy_major() >= 2 and patches.patch_numpy_header(patches.numpy_header_path()):
        notes.append("patched numpy.h for NumPy 2")
    if not want_cuda:
        env["nvcc_path"] = ""
    else:
        env["nvcc_path"] = nvcc
        for flag in ("use_mkl", "use_cutt", "use_cutlass", "use_nccl", "use_mpi"):
            env.setdefault(flag, "0")
        env.setdefault("conv_opt", "1")  # skip cuDNN (v9 is not loadable by Jittor 1.3.11)
        if patches.patch_helper_cuda(patches.helper_cuda_path()):
            notes.append("patched helper_cuda.h for CUDA 13")
        ok, output = _warm_import(dict(env))
        if not ok:
            raise RuntimeError("Jittor imported but found no usable CUDA; set STYLENERF_DEVICE=cpu "
                               "to run on CPU. Jittor's output:\n" + output)
    import jittor as jt
    if patches.numpy_major() >= 2:
        patches.contiguous_arrays_only(jt)
    jt.flags.use_cuda = 1 if want_cuda else 0
    fused_transposes = want_cuda and env.get("use_cutt") == "0"
    if fused_transposes:
        notes.append("transposes on the GPU (no cuTT)")
    if want_cuda and tensorcore:
        jt.flags.use_tensorcore = 1  # TF32 in cuBLAS
    _state.update(done=True, use_cuda=want_cuda, fused_transposes=fused_transposes, matmul="tf32" if tensorcore else "fp32",
                  where=f"Jittor {jt.__version__} on {'CUDA (nvcc ' + nvcc + ')' if want_cuda else 'CPU'}",
                  notes=notes)
    if not quiet:
        print(summary(), flush=True)
    return jt


# cuBLAS compute modes of Jittor's use_tensorcore flag, for fp32 data
MATMUL_MODES = {"fp32": 0, "tf32": 1, "bf16": 2, "fp16": 3}


def set_matmul(mode):
    """GPU matmul precision: fp32, tf32 (default), or bf16/fp16 tensor-core compute on fp32
    data (cuBLAS *_FAST_16BF/16F: faster, about 1e-3..1e-2 relative error). No effect on CPU."""
    if mode not in MATMUL_MODES:
        raise ValueError(f"--matmul must be one of {', '.join(MATMUL_MODES)}, got {mode!r}")
    if _state["use_cuda"]:
        import jittor as jt
        jt.flags.use_tensorcore = MATMUL_MODES[mode]
        _state["matmul"] = mode  # benchmarks' summary() lines name the precision they ran at


def use_cuda():
    """True once setup() chose the GPU."""
    return _state["use_cuda"]


def fused_transposes():
    """True where transposes must use Jittor's fused transpose op (a GPU run without cuTT, on
    which Jittor's own transpose of the last axis runs on the CPU): backend.blas.transpose."""
    return _state["fused_transposes"]


def summary():
    """One line: Jittor's version and device, the GPU matmul precision in force, what setup() did."""
    if not _state["done"]:
        return ""
    return (f"runtime: {_state['where']}"
            + (f", {_state['matmul'].upper()} matmul" if _state["use_cuda"] else "")
            + ("; " + "; ".join(_state["notes"]) if _state["notes"] else ""))
