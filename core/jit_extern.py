"""What the `jt.code` bindings of external CUDA libraries (core/cudnn.py, core/cublaslt.py) share:
loading the library for the compiled ops, putting its headers where Jittor's compiler looks,
and the useful part of a failed op's error."""
import ctypes
import re

import jittor as jt


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
