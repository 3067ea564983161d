"""backend/cublaslt_src.py: the cuBLASLt ops' C++ sources; compiled by nvcc where it and
cublasLt.h are installed."""
import os
import shutil
import subprocess

import pytest

from backend import cublaslt, cublaslt_src


def test_sources_fill_in_header_and_math_and_avoid_jittor_macros():
    header, bodies = cublaslt_src.sources("/x/cublasLt.h", "tf32")
    assert '#include "/x/cublasLt.h"' in header and "CUBLASLT_H" not in header
    assert set(bodies) == set(cublaslt_src.VARIANTS)
    for body in bodies.values():
        assert "CUBLAS_COMPUTE_32F_FAST_TF32" in body and "_ARG" not in body
    assert all("CUBLAS_COMPUTE_32F," in b for b in cublaslt_src.sources("/x/cublasLt.h", "fp32")[1].values())
    # '@' starts a macro in Jittor's code-op preprocessor, '«' separates its key fields; `out` is a macro
    assert not any(ch in s for s in [header, *bodies.values()] for ch in "@«")
    assert " out " not in header and " out;" not in header
    assert "CUBLASLT_EPILOGUE_RELU_BIAS" in bodies["fwd_relu_bias"] and "in2_p" in bodies["fwd_relu_bias"]
    assert "CUBLASLT_EPILOGUE_BIAS," in bodies["fwd_bias"]
    assert "CUBLASLT_EPILOGUE_RELU," in bodies["fwd_relu"] and "nullptr" in bodies["fwd_relu"]
    assert "CUBLASLT_EPILOGUE_BGRADB" in bodies["wgrad_bgrad"] and "out1_p" in bodies["wgrad_bgrad"]
    assert "CUBLASLT_EPILOGUE_DEFAULT" in bodies["dgrad"] and "CUBLASLT_EPILOGUE_DEFAULT" in bodies["wgrad"]


# ---------------------------------------------------------------- compile test (CPU, nvcc)
def _compile_env():
    nvcc = shutil.which("nvcc") or "/usr/local/cuda/bin/nvcc"
    return (nvcc if os.path.isfile(nvcc) else None), cublaslt.find_header()


# a stand-in for Jittor around the ops' host code: its executor's allocator and LOGf
_STUB = ("#define SN_STANDALONE_CHECK\n#include <iostream>\n#include <cuda_runtime.h>\n#define LOGf std::cerr\n"
         "namespace jittor { struct Allocator { void* alloc(size_t, size_t&); void free(void*, size_t, size_t); };\n"
         "struct Executor { Allocator* temp_allocator; }; extern Executor exe; }\n")


@pytest.mark.skipif(None in _compile_env(), reason="needs nvcc and cublasLt.h (CUDA toolkit, CUBLASLT_INCLUDE_DIR)")
def test_sources_compile_with_nvcc(tmp_path):
    """Where nvcc and cublasLt.h exist, every op variant's host code compiles as C++14 (Jittor's
    CUDA standard) inside a function with the parameters Jittor's code op defines."""
    nvcc, header = _compile_env()
    src = _STUB + cublaslt_src.standalone_source(header, modes=tuple(cublaslt_src.COMPUTE_TYPES))
    (tmp_path / "ops.cu").write_text(src)
    res = subprocess.run([nvcc, "-std=c++14", f"-I{os.path.dirname(header)}", "-c", "ops.cu", "-o", "ops.o"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
