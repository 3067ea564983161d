"""Whether the cuBLASLt linear layers (backend/cublaslt.py) work on this GPU machine, and why not.

1. Finds cublasLt.h and libcublasLt (prints both, and the library's version).
2. Builds every op variant's host code as a stand-alone CUDA program (cudaMalloc workspace, no
   Jittor) and runs, on small shapes that include the models' widths and unaligned ones (I = 63,
   27, 283), forward with BIAS and RELU_BIAS epilogues, input gradient and weight gradient with the
   BGRADB bias gradient, all in fp32 compute, against NumPy: tells whether cuBLASLt itself works
   here with our layouts and epilogues, apart from Jittor.  A failing cuBLASLt call prints its
   status and the call ("FATAL cuBLASLt ...").
3. Times the ops at the NeRF's size (262,144 rows, 256 -> 256; TF32 and fp32), with and without
   the fused epilogues.
4. Runs backend.cublaslt.available() inside Jittor and prints the whole error text on failure.

    python bench/diag/diag_cublaslt.py [--rows 262144]
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from backend import runtime  # noqa: E402
from bench.common import STANDALONE_STUB  # noqa: E402

_MAIN = r"""
using namespace jittor;
static void sn_cuda_check(const char* what) {
    cudaError_t e = cudaDeviceSynchronize();
    if (e != cudaSuccess) { std::cerr << "CUDA error after " << what << ": " << cudaGetErrorString(e) << std::endl; std::exit(4); }
}
static float* sn_load(const std::string& path, size_t n) {
    std::vector<float> h(n); FILE* f = fopen(path.c_str(), "rb");
    if (!f || fread(h.data(), 4, n, f) != n) { std::cerr << "cannot read " << path << std::endl; std::exit(2); }
    fclose(f); float* d; cudaMalloc(&d, n * 4); cudaMemcpy(d, h.data(), n * 4, cudaMemcpyHostToDevice); return d;
}
static float* sn_alloc_dev(size_t n) { float* d; cudaMalloc(&d, n * 4); cudaMemset(d, 0, n * 4); return d; }
static void sn_save(const std::string& path, const float* d, size_t n, const char* what) {
    sn_cuda_check(what);
    std::vector<float> h(n); cudaMemcpy(h.data(), d, n * 4, cudaMemcpyDeviceToHost);
    FILE* f = fopen(path.c_str(), "wb"); fwrite(h.data(), 4, n, f); fclose(f);
}
// one case: files <p>x.bin [N,I], w.bin [O,I], b.bin [O], g.bin [N,O] -> y, yr (ReLU), dx, dw, db
static void sn_case(const std::string& p, long long N, long long I, long long O) {
    float *x = sn_load(p + "x.bin", N * I), *w = sn_load(p + "w.bin", O * I), *b = sn_load(p + "b.bin", O);
    float *g = sn_load(p + "g.bin", N * O);
    float *y = sn_alloc_dev(N * O), *yr = sn_alloc_dev(N * O), *dx = sn_alloc_dev(N * I);
    float *dw = sn_alloc_dev(O * I), *db = sn_alloc_dev(O);
    sn_fwd_bias_fp32(x, N, I, w, O, I, b, O, y, N, O);
    sn_save(p + "y.bin", y, N * O, "forward (BIAS)");
    sn_fwd_relu_bias_fp32(x, N, I, w, O, I, b, O, yr, N, O);
    sn_save(p + "yr.bin", yr, N * O, "forward (RELU_BIAS)");
    sn_dgrad_fp32(g, N, O, w, O, I, dx, N, I);
    sn_save(p + "dx.bin", dx, N * I, "input gradient");
    sn_wgrad_bgrad_fp32(x, N, I, g, N, O, dw, O, I, db, O);
    sn_save(p + "dw.bin", dw, O * I, "weight gradient (BGRADB)");
    sn_save(p + "db.bin", db, O, "bias gradient (BGRADB)");
    for (float* q : {x, w, b, g, y, yr, dx, dw, db}) cudaFree(q);
}
template <class F> static float sn_time(F f, int reps) {
    f(); sn_cuda_check("warm-up");
    cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
    cudaEventRecord(a); for (int r = 0; r < reps; r++) f(); cudaEventRecord(b); cudaEventSynchronize(b);
    float ms = 0; cudaEventElapsedTime(&ms, a, b); sn_cuda_check("timing"); return ms / reps;
}
#define SN_TIME_ALL(M) do { \
    printf("  %s: forward %.3f ms, forward+BIAS %.3f, forward+RELU_BIAS %.3f, input grad %.3f, " \
           "weight grad %.3f, weight grad+BGRADB %.3f\n", #M, \
        sn_time([&] { sn_fwd_##M(x, N, I, w, O, I, y, N, O); }, reps), \
        sn_time([&] { sn_fwd_bias_##M(x, N, I, w, O, I, b, O, y, N, O); }, reps), \
        sn_time([&] { sn_fwd_relu_bias_##M(x, N, I, w, O, I, b, O, y, N, O); }, reps), \
        sn_time([&] { sn_dgrad_##M(y, N, O, w, O, I, x, N, I); }, reps), \
        sn_time([&] { sn_wgrad_##M(x, N, I, y, N, O, w, O, I); }, reps), \
        sn_time([&] { sn_wgrad_bgrad_##M(x, N, I, y, N, O, w, O, I, b, O); }, reps)); } while (0)
int main(int argc, char** argv) {
    cudaDeviceProp prop; cudaGetDeviceProperties(&prop, 0);
    printf("device: %s, cuBLASLt version %zu\n", prop.name, cublasLtGetVersion());
    if (argc > 1 && !strcmp(argv[1], "time")) {
        long long N = atoll(argv[2]), I = atoll(argv[3]), O = atoll(argv[4]); int reps = 20;
        float *x = sn_alloc_dev(N * I), *w = sn_alloc_dev(O * I), *b = sn_alloc_dev(O), *y = sn_alloc_dev(N * O);
        printf("timing N=%lld I=%lld O=%lld (ms per call, %d calls):\n", N, I, O, reps);
        SN_TIME_ALL(tf32);
        SN_TIME_ALL(fp32);
        return 0;
    }
    for (int c = 1; c + 3 < argc; c += 4)  // cases: <prefix> N I O
        sn_case(argv[c], atoll(argv[c + 1]), atoll(argv[c + 2]), atoll(argv[c + 3]));
    std::cout << "stand-alone: all cases ran" << std::endl;
    return 0;
}
"""

# (N, I, O): unaligned inputs, one output column, then model widths
CASES = [(37, 63, 20), (37, 27, 20), (5, 3, 1), (64, 256, 256), (64, 319, 256), (64, 283, 128),
         (64, 256, 1), (64, 128, 3), (64, 351, 256), (300, 95, 256)]


def _write_case(d, k, n, i, o):
    rng = np.random.default_rng(k)
    arrays = dict(x=rng.standard_normal((n, i)), w=rng.standard_normal((o, i)) / np.sqrt(i),
                  b=rng.standard_normal(o), g=rng.standard_normal((n, o)))
    for name, a in arrays.items():
        a.astype(np.float32).tofile(os.path.join(d, f"c{k}_{name}.bin"))
    return {k: v.astype(np.float32).astype(np.float64) for k, v in arrays.items()}


def _compare(cublaslt, d, k, n, i, o, a):
    """Relative errors of case k's outputs against NumPy; True if all < 1e-4."""
    y, dx, dw, db = cublaslt.reference(a["x"], a["w"], a["b"], a["g"], relu=False)
    yr = np.maximum(y, 0)
    ok = True
    errs = []
    for name, ref in (("y", y), ("yr", yr), ("dx", dx), ("dw", dw), ("db", db)):
        got = np.fromfile(os.path.join(d, f"c{k}_{name}.bin"), np.float32).reshape(ref.shape)
        err = np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-12)
        ok &= bool(err < 1e-4)
        errs.append(f"{name} {err:.1e}")
    print(f"  N={n} I={i} O={o}: {'ok  ' if ok else 'FAIL'} relative errors " + ", ".join(errs)
          + "  (y: BIAS, yr: RELU_BIAS, dx: input grad, dw/db: weight grad + BGRADB)")
    return ok


def standalone(cublaslt, header, lib, rows):
    from backend.cublaslt_src import standalone_source
    src = STANDALONE_STUB + standalone_source(header, modes=("fp32", "tf32")) + _MAIN
    with tempfile.TemporaryDirectory() as d:
        open(os.path.join(d, "ops.cu"), "w").write(src)
        cmd = ["nvcc", "-std=c++17", "ops.cu", "-o", "ops", f"-I{os.path.dirname(header)}",
               f"-Xlinker={lib}", f"-Xlinker=-rpath={os.path.dirname(lib)}"]
        r = subprocess.run(cmd, cwd=d, capture_output=True, text=True)
        print("stand-alone compile:", "ok" if r.returncode == 0 else "FAILED\n" + r.stderr[-3000:], flush=True)
        if r.returncode:
            return
        args, data = [], {}
        for k, (n, i, o) in enumerate(CASES):
            data[k] = _write_case(d, k, n, i, o)
            args += [os.path.join(d, f"c{k}_"), str(n), str(i), str(o)]
        r = subprocess.run(["./ops"] + args, cwd=d, capture_output=True, text=True, timeout=120)
        print("stand-alone run: rc", r.returncode, r.stdout.strip(), r.stderr.strip()[-2000:], flush=True)
        if r.returncode:
            return
        results = [_compare(cublaslt, d, k, *CASES[k], data[k]) for k in range(len(CASES))]
        print("stand-alone check:", "PASSED" if all(results) else "FAILED", flush=True)
        for shape in ((rows, 256, 256), (rows, 63, 256), (rows, 283, 128)):
            r = subprocess.run(["./ops", "time", *map(str, shape)], cwd=d, capture_output=True, text=True,
                               timeout=120)
            print(r.stdout.strip(), r.stderr.strip()[-2000:], flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=262144, help="rows of the timed GEMMs (2048 rays x 128 samples)")
    a = ap.parse_args()
    runtime.setup()
    from backend import cublaslt
    print("header:", cublaslt.find_header())
    found = cublaslt.find()
    print("found (header, library, major):", found, flush=True)
    if found is not None:
        try:
            standalone(cublaslt, found[0], found[1], a.rows)
        except Exception as e:  # keep going to the Jittor check
            print("stand-alone check raised:", repr(e), flush=True)
    ok = cublaslt.available()
    print("available():", ok, "|", cublaslt.unavailable_reason(), "| fused bias gradient:",
          cublaslt._state["fused_bgrad"])
    if not ok:
        print("---- whole error text ----")
        print(cublaslt._state.get("detail", ""))


if __name__ == "__main__":
    main()
