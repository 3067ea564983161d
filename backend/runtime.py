"""Jittor runtime set-up: the one module every entry point imports before Jittor.

`setup()` decides CPU or GPU, sets Jittor's environment flags *before* Jittor is
imported (they are read at import time), applies the fixes that Jittor 1.3.11
needs on a CUDA 13 / cuDNN 9 machine, and logs one line saying what it did.

Why each step (see ../shared/reference/JITTOR_GPU.md for the measurements):
- Offline: Jittor downloads oneDNN ("mkl") on first use; with the `jittor-offline`
  package installed it finds the archive locally, otherwise we turn mkl off.
- CPU: an installed `nvcc` without a GPU makes Jittor try CUDA and fail, so
  `nvcc_path` is set to "" when no GPU is present.
- CUDA 13: `helper_cuda.h` reads `cudaDeviceProp::computeMode/clockRate`, which
  CUDA 13 removed; we rewrite those reads to `cudaDeviceGetAttribute` in the
  installed Jittor (idempotent, marked, original kept as `.orig`).
- cuDNN 9 is not found by Jittor: `conv_opt=1` loads only cuBLAS and cuRAND; the
  project's own convolution (models/layers.py) replaces cuDNN's.
- cub/CCCL 3 needs C++17 (Jittor builds CUDA as C++14), so cumsum/sort are
  unavailable on the GPU: the project's own `jt.code` kernels stand in where needed.
- NumPy 2 changed the PyArray_Descr layout (elsize moved behind a 64-bit flags
  field); Jittor 1.3.11's own copy of the struct (src/pyjt/numpy.h) reads a wrong
  element size, so jt.array(np_array) silently gets garbage.  With NumPy >= 2 we
  rewrite that struct to NumPy 2's layout (same marking/idempotence as above).
- After its core is (re)built Jittor prints "jit_utils updated, please rerun"
  and calls sys.exit(0); a throw-away subprocess import absorbs that.
"""
import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys

log = logging.getLogger("stylenerf.runtime")

PATCH_MARK = "/* stylenerf: CUDA 13 cudaDeviceProp patch */"
_state = {"done": False, "use_cuda": False, "matmul": "tf32", "where": "", "notes": []}


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


def jittor_src_dir():
    spec = importlib.util.find_spec("jittor")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("Jittor is not installed: run `pip install -r requirements.txt`.")
    return list(spec.submodule_search_locations)[0]


def patch_helper_cuda(path):
    """Rewrite the CUDA-13-removed cudaDeviceProp fields in Jittor's helper_cuda.h.

    Each `deviceProp.computeMode` / `deviceProp.clockRate` read becomes a
    `cudaDeviceGetAttribute` call on the device named in the closest preceding
    `cudaGetDeviceProperties(&deviceProp, DEV)`.  Returns True if the file changed.
    """
    with open(path) as f:
        text = f.read()
    if PATCH_MARK in text:
        return False
    lines = text.split("\n")
    attr = {"computeMode": "cudaDevAttrComputeMode", "clockRate": "cudaDevAttrClockRate"}
    dev = None
    first_use = None
    for i, line in enumerate(lines):
        m = re.search(r"cudaGetDeviceProperties\(&deviceProp,\s*(\w+)\)", line)
        if m:
            dev = m.group(1)
        for field, enum in attr.items():
            token = "deviceProp." + field
            if token in line:
                if dev is None:
                    raise RuntimeError(f"cannot patch {path}: no device for {token} at line {i + 1}")
                line = line.replace(token, f"stylenerf_dev_attr({enum}, {dev})")
                first_use = i if first_use is None else first_use
        lines[i] = line
    if first_use is None:
        return False  # an already fixed Jittor: nothing to do
    # put the helper before the function holding the first use
    j = first_use
    while j > 0 and not lines[j].startswith("inline "):
        j -= 1
    helper = [PATCH_MARK,
              "static inline int stylenerf_dev_attr(cudaDeviceAttr a, int dev) {",
              "  int v = 0; cudaDeviceGetAttribute(&v, a, dev); return v;", "}"]
    lines[j:j] = helper
    if not os.path.exists(path + ".orig"):
        shutil.copyfile(path, path + ".orig")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines))
    os.replace(tmp, path)
    return True


NUMPY2_MARK = "/* stylenerf: NumPy 2 PyArray_Descr layout */"
_DESCR_NUMPY1 = """    int type_num;
    int elsize;
    int alignment;
    char* subarray;
    PyObject *fields;
    PyObject *names;
};"""
_DESCR_NUMPY2 = NUMPY2_MARK + """
    int type_num;
    unsigned long long flags_numpy2;
    Py_ssize_t elsize;
    Py_ssize_t alignment;
    PyObject *metadata;
};"""


def patch_numpy_header(path):
    """Give Jittor's PyArrayDescr_Proxy NumPy 2's field layout. Returns True if the file changed."""
    with open(path) as f:
        text = f.read()
    if NUMPY2_MARK in text:
        return False
    if _DESCR_NUMPY1 not in text:
        raise RuntimeError(f"cannot patch {path} for NumPy 2: unexpected PyArrayDescr_Proxy layout")
    if not os.path.exists(path + ".orig"):
        shutil.copyfile(path, path + ".orig")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text.replace(_DESCR_NUMPY1, _DESCR_NUMPY2))
    os.replace(tmp, path)
    return True


def _numpy_major():
    import numpy
    return int(numpy.__version__.split(".")[0])


def _contiguous_arrays_only(jt):
    """Hand jt.array only C-contiguous NumPy arrays.

    For a strided array Jittor 1.3.11 calls a NumPy C-API function through its fixed
    API-table slot; under NumPy 2 that call crashed (segfault at address 0) on the GPU
    machine, while contiguous arrays convert correctly.  Copying first avoids the call.
    """
    import numpy as np
    original = jt.array
    if getattr(original, "_stylenerf_contiguous", False):
        return

    def array(data, dtype=None):
        if isinstance(data, np.ndarray) and not data.flags.c_contiguous:
            data = np.ascontiguousarray(data)
        return original(data, dtype)

    array._stylenerf_contiguous = True
    array.__wrapped__ = original
    array.__doc__ = original.__doc__
    jt.array = array


def _transposes_on_device(jt):
    """Route jt.transpose / Var.transpose / Var.permute to backend.blas.transpose_on_device.

    Without cuTT, Jittor runs a transpose that moves the last axis on the CPU (measured: most
    of a decoder fine-tune iteration's time on the H200).  Returns True when it patched now.
    """
    from backend.blas import transpose_on_device
    if jt.transpose is transpose_on_device:
        return False
    jt.transpose = jt.permute = transpose_on_device
    jt.Var.transpose = jt.Var.permute = transpose_on_device
    return True


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
    if _numpy_major() >= 2 and patch_numpy_header(os.path.join(jittor_src_dir(), "src", "pyjt", "numpy.h")):
        notes.append("patched numpy.h for NumPy 2")
    if not want_cuda:
        env["nvcc_path"] = ""
    else:
        env["nvcc_path"] = nvcc
        for flag in ("use_mkl", "use_cutt", "use_cutlass", "use_nccl", "use_mpi"):
            env.setdefault(flag, "0")
        env.setdefault("conv_opt", "1")  # skip cuDNN (v9 is not loadable by Jittor 1.3.11)
        header = os.path.join(jittor_src_dir(), "extern", "cuda", "inc", "helper_cuda.h")
        if patch_helper_cuda(header):
            notes.append("patched helper_cuda.h for CUDA 13")
        ok, output = _warm_import(dict(env))
        if not ok:
            raise RuntimeError("Jittor imported but found no usable CUDA; set STYLENERF_DEVICE=cpu "
                               "to run on CPU. Jittor's output:\n" + output)
    import jittor as jt
    if _numpy_major() >= 2:
        _contiguous_arrays_only(jt)
    jt.flags.use_cuda = 1 if want_cuda else 0
    if want_cuda and env.get("use_cutt") == "0" and _transposes_on_device(jt):
        notes.append("transposes on the GPU (no cuTT)")
    if want_cuda and tensorcore:
        jt.flags.use_tensorcore = 1  # TF32 in cuBLAS
    _state.update(done=True, use_cuda=want_cuda, matmul="tf32" if tensorcore else "fp32",
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


def summary():
    """One line: Jittor's version and device, the GPU matmul precision in force, what setup() did."""
    if not _state["done"]:
        return ""
    return (f"runtime: {_state['where']}"
            + (f", {_state['matmul'].upper()} matmul" if _state["use_cuda"] else "")
            + ("; " + "; ".join(_state["notes"]) if _state["notes"] else ""))
