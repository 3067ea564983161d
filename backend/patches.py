"""Every change the project makes to Jittor - to its installed files or its functions - and why.

backend.runtime.setup() applies them (its one line says when a file changed); nothing else in
the project edits Jittor's files or replaces its functions (tests/test_patches.py checks the
sources for assignments to Jittor's attributes).  Each stays a patch because no explicit call
of ours can reach what it fixes:

1. extern/cuda/inc/helper_cuda.h of the installed Jittor (GPU runs): each
   `deviceProp.computeMode` / `deviceProp.clockRate` read becomes a `cudaDeviceGetAttribute`
   call.  CUDA 13 removed those fields, so Jittor's CUDA core does not compile.  Jittor compiles
   the header itself while it is imported.
2. src/pyjt/numpy.h of the installed Jittor (NumPy >= 2): the PyArrayDescr_Proxy struct in
   NumPy 2's layout (elsize moved behind a 64-bit flags field).  With NumPy 1's layout
   jt.array(np_array) silently gets garbage (a wrong element size).  Compiled into Jittor's core
   as 1.
   Both file edits are idempotent and marked, the original kept as `<file>.orig`.
3. jt.array (NumPy >= 2): a NumPy array that is not C-contiguous is copied to C order first.
   For a strided array Jittor 1.3.11 calls a NumPy C-API function through its fixed API-table
   slot, which under NumPy 2 crashed (segfault at address 0) on the H200 machine.  jt.array
   takes NumPy data in about 60 places of the project and inside Jittor itself
   (Module.load_parameters): one strided array missed by an explicit copy would be a crash.

No longer a patch: jt.transpose / Var.transpose / Var.permute were replaced on the GPU by
Jittor's fused transpose (without cuTT Jittor runs a transpose that moves the last axis on the
CPU); the project's transposes now call backend.blas.transpose, which chooses that op itself.
"""
import importlib.util
import os
import re
import shutil


def jittor_src_dir():
    spec = importlib.util.find_spec("jittor")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("Jittor is not installed: run `pip install -r requirements.txt`.")
    return list(spec.submodule_search_locations)[0]


def helper_cuda_path():
    return os.path.join(jittor_src_dir(), "extern", "cuda", "inc", "helper_cuda.h")


def numpy_header_path():
    return os.path.join(jittor_src_dir(), "src", "pyjt", "numpy.h")


# ---------------------------------------------------------------- 1. helper_cuda.h (CUDA 13)
PATCH_MARK = "/* stylenerf: CUDA 13 cudaDeviceProp patch */"


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
    tmp = f"{path}.{os.getpid()}.tmp"  # processes starting together each write their own
    with open(tmp, "w") as f:
        f.write("\n".join(lines))
    os.replace(tmp, path)
    return True


# ---------------------------------------------------------------- 2. numpy.h (NumPy 2)
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
    tmp = f"{path}.{os.getpid()}.tmp"  # processes starting together each write their own
    with open(tmp, "w") as f:
        f.write(text.replace(_DESCR_NUMPY1, _DESCR_NUMPY2))
    os.replace(tmp, path)
    return True


def numpy_major():
    import numpy
    return int(numpy.__version__.split(".")[0])


# ---------------------------------------------------------------- 3. jt.array (NumPy 2)
def contiguous_arrays_only(jt):
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
