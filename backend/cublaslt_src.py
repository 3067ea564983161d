"""The C++ sources of the cuBLASLt ops of backend/cublaslt.py: a header with the plan cache and
the matmul call, one op body per variant (forward with and without bias/ReLU epilogues, input
and weight gradients), and the same ops as plain C++ functions for compile tests.

Row-major Jittor arrays in cuBLAS's column-major terms: a row-major [R, C] array is the
column-major matrix of its transpose, [C, R] with leading dimension C.  So (m, n, k and the
stored matrices, all contiguous, ld = stored rows):

  forward  D = y^T [O,N] = op(A) op(B) with A = W stored [I,O] (ld I), TRANSA = T;
           B = x^T stored [I,N] (ld I), N.   m=O n=N k=I.  The bias runs along D's rows (O): the
           BIAS epilogue's layout ("bias length = rows of D").
  dgrad    D = dx^T [I,N] = A B with A = W stored [I,O] (ld I), N; B = gp^T stored [O,N] (ld O), N.
           m=I n=N k=O.
  wgrad    D = dW^T [I,O] (stored column-major = dW row-major [O,I]) = A op(B) with A = x^T stored
           [I,N] (ld I), N; B = gp^T stored [O,N] (ld O), TRANSB = T, so op(B) = gp [N,O].
           m=I n=O k=N.  db[o] = sum_n gp[n,o] = the sums over k of op(B)'s columns, one per
           column of D: epilogue BGRADB ("bias size = columns of D, reduced over k").
           BGRADA would give one value per row of D (per input feature I): the wrong vector here,
           it fits only the transposed product D = dW [O,I] column-major, which is not the
           row-major layout of Jittor's weight.

How the ops reach cuBLASLt: the source includes cublasLt.h by its absolute path (backend/cublaslt.py
puts its folder on Jittor's nvcc -I list: Jittor follows every #include of an op's source, and
loads libcublasLt with RTLD_GLOBAL before the first op compiles).  The host code keeps one
cuBLASLt handle per op library, and per (transposes, m, n, k, epilogue, compute type, pointer
alignments) a plan: descriptors and the heuristic's first algorithm.  Workspace comes from
Jittor's temporary allocator.  Stream 0: Jittor's kernels and its cuBLAS handle
(cublas_wrapper.cc: no cublasSetStream) use the default stream.
"""
import functools

from backend.jit_extern import WORKSPACE_CPP

# Jittor's code-op preprocessor treats '@' specially: none in these sources.  `out` is a macro in
# the op's translation unit, so not used as a name.  The header sits at file scope of the op.
_HEADER = r"""
#include "CUBLASLT_H"
#ifndef SN_STANDALONE_CHECK
#include "executor.h"
#endif
#include <cstdint>
#include <map>
#include <tuple>
namespace jittor {
#define SN_LT_OK(expr) do { cublasStatus_t st_ = (expr); \
    if (st_ != CUBLAS_STATUS_SUCCESS) LOGf << "cuBLASLt error" << (int)st_ << cublasLtGetStatusName(st_) \
        << "in" << #expr; } while (0)

static cublasLtHandle_t sn_lt_handle() {
    static cublasLtHandle_t h = nullptr;
    if (!h) SN_LT_OK(cublasLtCreate(&h));
    return h;
}

SN_WORKSPACE_CPP
// largest power of two <= 16 dividing the address (nullptr: 16): the heuristic picks kernels
// for the alignment it is told, so plans are kept per alignment
static int sn_lt_align(const void* p) {
    uintptr_t a = (uintptr_t)p;
    int r = 16;
    while (r > 1 && (a % r)) r >>= 1;
    return r;
}

struct SnLtPlan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
    cublasLtMatmulAlgo_t algo;
    size_t ws = 0;
};

// transa, transb, m, n, k, epilogue, compute type, alignment of A/B/D, alignment of the bias
typedef std::tuple<int, int, long long, long long, long long, int, int, int, int> SnLtKey;

static const size_t SN_LT_MAX_WORKSPACE = 32u << 20;

// descriptors and the heuristic's best algorithm for one key (bias: its pointer, for alignment)
static SnLtPlan sn_lt_make_plan(const SnLtKey& key, void* bias, const char* what) {
    bool ta = std::get<0>(key), tb = std::get<1>(key);
    long long m = std::get<2>(key), n = std::get<3>(key), k = std::get<4>(key);
    cublasLtEpilogue_t epi = (cublasLtEpilogue_t)std::get<5>(key);
    cublasComputeType_t compute = (cublasComputeType_t)std::get<6>(key);
    uint32_t align = std::get<7>(key);
    SnLtPlan p;
    cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    SN_LT_OK(cublasLtMatmulDescCreate(&p.desc, compute, CUDA_R_32F));
    SN_LT_OK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof(opa)));
    SN_LT_OK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof(opb)));
    SN_LT_OK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
    if (bias) SN_LT_OK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    // contiguous column-major storage: ld = stored rows; stored A is op(A)'s transpose when ta
    SN_LT_OK(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_32F, ta ? k : m, ta ? m : k, ta ? k : m));
    SN_LT_OK(cublasLtMatrixLayoutCreate(&p.b, CUDA_R_32F, tb ? n : k, tb ? k : n, tb ? n : k));
    SN_LT_OK(cublasLtMatrixLayoutCreate(&p.d, CUDA_R_32F, m, n, m));
    cublasLtMatmulPreference_t pref;
    SN_LT_OK(cublasLtMatmulPreferenceCreate(&pref));
    size_t max_ws = SN_LT_MAX_WORKSPACE;
    SN_LT_OK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &max_ws, sizeof(max_ws)));
    SN_LT_OK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align, sizeof(align)));
    SN_LT_OK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align, sizeof(align)));
    SN_LT_OK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align, sizeof(align)));
    SN_LT_OK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align, sizeof(align)));
    cublasLtMatmulHeuristicResult_t result;
    int found = 0;
    cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(sn_lt_handle(), p.desc, p.a, p.b, p.d, p.d, pref, 1,
                                                       &result, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st != CUBLAS_STATUS_SUCCESS || found < 1)
        LOGf << "cuBLASLt found no algorithm for the" << what << "GEMM: m" << m << "n" << n << "k" << k
             << "trans" << (int)ta << (int)tb << "epilogue" << (int)epi << "compute" << (int)compute
             << "alignment" << (int)align << "status" << cublasLtGetStatusName(st);
    p.algo = result.algo;
    p.ws = result.workspaceSize;
    return p;
}

// D[m,n] = op(A)[m,k] op(B)[k,n] (+ epilogue), cuBLAS's column-major notation, contiguous
// float32, on stream 0.  bias: the bias (BIAS epilogues) or the bias gradient (BGRAD*), or nullptr.
static void sn_lt_matmul(bool ta, bool tb, long long m, long long n, long long k, const float* A,
                         const float* B, float* D, cublasLtEpilogue_t epi, void* bias,
                         cublasComputeType_t compute, const char* what) {
    static std::map<SnLtKey, SnLtPlan> plans;
    int align = sn_lt_align(A);
    if (sn_lt_align(B) < align) align = sn_lt_align(B);
    if (sn_lt_align(D) < align) align = sn_lt_align(D);
    SnLtKey key(ta, tb, m, n, k, (int)epi, (int)compute, align, sn_lt_align(bias));
    auto it = plans.find(key);
    if (it == plans.end()) it = plans.emplace(key, sn_lt_make_plan(key, bias, what)).first;
    SnLtPlan& p = it->second;
    if (bias) SN_LT_OK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    SnWorkspace work(p.ws);
    float one = 1.f, zero = 0.f;
    SN_LT_OK(cublasLtMatmul(sn_lt_handle(), p.desc, &one, A, p.a, B, p.b, &zero, D, p.d, D, p.d, &p.algo,
                            work.ptr, p.ws, 0));
}
} // jittor
"""

# The op bodies (Jittor gives in{i}_p, in{i}_shape{j}, out{i}_p; shapes are run-time values, so
# one compile serves every size).  Layout reasoning: the module docstring.
_OPS = {
    # in0 = x [N,I], in1 = W [O,I], in2 = b [O] (if BIAS), out0 = y [N,O]:  y^T = op_T(W^T) x^T
    "fwd": "sn_lt_matmul(true, false, in1_shape0, in0_shape0, in0_shape1, in1_p, in0_p, out0_p, "
           "EPILOGUE_ARG, BIAS_ARG, COMPUTE_ARG, \"forward\");",
    # in0 = gp [N,O], in1 = W [O,I], out0 = dx [N,I]:  dx^T [I,N] = W^T [I,O] gp^T [O,N]
    "dgrad": "sn_lt_matmul(false, false, in1_shape1, in0_shape0, in1_shape0, in1_p, in0_p, out0_p, "
             "CUBLASLT_EPILOGUE_DEFAULT, nullptr, COMPUTE_ARG, \"input-gradient\");",
    # in0 = x [N,I], in1 = gp [N,O], out0 = dW [O,I] (out1 = db [O] with BGRADB):
    # dW^T [I,O] = x^T [I,N] op_T(gp^T) [N,O]
    "wgrad": "sn_lt_matmul(false, true, in0_shape1, in1_shape1, in0_shape0, in0_p, in1_p, out0_p, "
             "EPILOGUE_ARG, BIAS_ARG, COMPUTE_ARG, \"weight-gradient\");",
}
# variant -> (op, epilogue, bias pointer, (input ranks), (output ranks))
VARIANTS = {
    "fwd": ("fwd", "CUBLASLT_EPILOGUE_DEFAULT", "nullptr", (2, 2), (2,)),
    "fwd_relu": ("fwd", "CUBLASLT_EPILOGUE_RELU", "nullptr", (2, 2), (2,)),
    "fwd_bias": ("fwd", "CUBLASLT_EPILOGUE_BIAS", "(void*)in2_p", (2, 2, 1), (2,)),
    "fwd_relu_bias": ("fwd", "CUBLASLT_EPILOGUE_RELU_BIAS", "(void*)in2_p", (2, 2, 1), (2,)),
    "dgrad": ("dgrad", "", "", (2, 2), (2,)),
    "wgrad": ("wgrad", "CUBLASLT_EPILOGUE_DEFAULT", "nullptr", (2, 2), (2,)),
    "wgrad_bgrad": ("wgrad", "CUBLASLT_EPILOGUE_BGRADB", "(void*)out1_p", (2, 2), (2, 1)),
}

# cuBLAS compute types of the --matmul modes (fp32 data): CUBLAS_COMPUTE_32F is exact float32
COMPUTE_TYPES = {"fp32": "CUBLAS_COMPUTE_32F", "tf32": "CUBLAS_COMPUTE_32F_FAST_TF32",
                 "bf16": "CUBLAS_COMPUTE_32F_FAST_16BF", "fp16": "CUBLAS_COMPUTE_32F_FAST_16F"}


@functools.lru_cache(maxsize=None)
def header_source(header_path):
    return _HEADER.replace("CUBLASLT_H", header_path).replace("SN_WORKSPACE_CPP", WORKSPACE_CPP)


@functools.lru_cache(maxsize=None)
def op_source(variant, math="tf32"):
    """C++ host code of one op variant (see VARIANTS) for a math mode."""
    op, epilogue, bias, _, _ = VARIANTS[variant]
    src = _OPS[op].replace("EPILOGUE_ARG", epilogue).replace("BIAS_ARG", bias)
    return src.replace("COMPUTE_ARG", COMPUTE_TYPES[math])


def sources(header_path, math="tf32"):
    """(header, {variant: op body}) C++ sources for this cublasLt.h and math mode."""
    return header_source(header_path), {v: op_source(v, math) for v in VARIANTS}


def _signature(variant):
    """The parameters Jittor's code op gives a variant's body: in{i}_p, in{i}_shape{j}, out{i}_p, ..."""
    _, _, _, ins, outs = VARIANTS[variant]
    args = []
    for kind, ranks in (("in", ins), ("out", outs)):
        for i, r in enumerate(ranks):
            args.append(f"float* {kind}{i}_p")
            args += [f"long long {kind}{i}_shape{j}" for j in range(r)]
    return ", ".join(args)


def standalone_source(header_path, modes=("fp32",)):
    """The ops as plain C++ functions `sn_<variant>_<mode>(<Jittor's op parameters>)`, after the
    header: for compile tests and bench/diag/diag_cublaslt.py.  Put a stand-in for Jittor in front
    (SN_STANDALONE_CHECK, LOGf, jittor::exe with a temp_allocator)."""
    fns = "".join(f"void sn_{v}_{m}({_signature(v)}) {{\n{op_source(v, m)}\n}}\n" for m in modes for v in VARIANTS)
    return header_source(header_path) + "namespace jittor {\n" + fns + "} // jittor\n"
