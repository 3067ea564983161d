"""What the `jt.code` bindings of external CUDA libraries (backend/cudnn.py, backend/cublaslt.py) share:
loading the library for the compiled ops, putting its headers where Jittor's compiler looks,
and the useful part of a failed op's error."""
import ctypes
import re

import jittor as jt

from backend import runtime


# C++ for an op's host code (inside namespace jittor, after executor.h): scratch memory from
# Jittor's temporary allocator, as Jittor's own cuDNN/cuBLAS ops take it, so it shares Jittor's
# memory pool; given back when the call has been queued
WORKSPACE_CPP = r"""
struct SnWorkspace {
    void* ptr = nullptr;
    size_t size, allocation = 0;
    explicit SnWorkspace(size_t bytes) : size(bytes) {
        if (size) ptr = exe.temp_allocator->alloc(size, allocation);
    }
    ~SnWorkspace() {
        if (ptr) exe.temp_allocator->free(ptr, size, allocation);
    }
};
"""


def load_global(lib_path):
    """Load a shared library with RTLD_GLOBAL: the ops' undefined symbols then resolve when
    Jittor loads the compiled op."""
    ctypes.CDLL(lib_path, mode=ctypes.RTLD_GLOBAL)


def add_include_dir(folder):
    """Jittor follows every #include of an op's source through its own -I list (cudnn.h
    includes cudnn_version.h, cublasLt.h includes cublas_api.h, ...; an absolute include of the
    top header is not enough), so the header's folder must be on it; added once."""
    flag = f' -I"{folder}"'
    if flag not in jt.flags.nvcc_flags:
        jt.flags.nvcc_flags += flag


def failure_reason(error, limit=400):
    """The informative part of an exception from a Jittor op: Jittor wraps a failed op's
    error in a generic 'Wrong inputs arguments ...' text with the cause after 'Failed reason:'."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)) or repr(error)
    if "Failed reason:" in text:
        text = text.rsplit("Failed reason:", 1)[1]
    return " ".join(text.split())[:limit]


def decided(state):
    """The start of an `available()` that decides once per process: its earlier answer, False
    off the GPU (saying why in state), or None when the check is to run now."""
    if state["checked"]:
        return state["ok"]
    state["checked"] = True
    if not runtime.use_cuda():
        state["why"] = "not a GPU run"
        return False
    return None
