"""Why cuDNN convolutions fail their check on this GPU machine (run on the device).

1. Builds the three ops' host code as a stand-alone program (real cudaMalloc workspace, no
   Jittor) and runs forward / backward-data / backward-filter on a small case against NumPy:
   tells whether cuDNN itself works here with our descriptors and algorithm choice.
2. Runs backend.cudnn.available() inside Jittor and prints the whole error text.

    python bench/diag/diag_cudnn.py
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from backend import runtime  # noqa: E402
from bench.common import STANDALONE_STUB  # noqa: E402

_MAIN = r"""
static float* sn_load(const char* path, size_t n) {
    std::vector<float> h(n); FILE* f = fopen(path, "rb");
    if (!f || fread(h.data(), 4, n, f) != n) { std::cerr << "cannot read " << path << std::endl; std::exit(2); }
    fclose(f); float* d; cudaMalloc(&d, n * 4); cudaMemcpy(d, h.data(), n * 4, cudaMemcpyHostToDevice); return d;
}
static void sn_save(const char* path, const float* d, size_t n) {
    std::vector<float> h(n); cudaDeviceSynchronize();
    cudaError_t e = cudaMemcpy(h.data(), d, n * 4, cudaMemcpyDeviceToHost);
    if (e != cudaSuccess) { std::cerr << "CUDA error " << cudaGetErrorString(e) << std::endl; std::exit(4); }
    FILE* f = fopen(path, "wb"); fwrite(h.data(), 4, n, f); fclose(f);
}
int main() {
    using namespace jittor;
    long long B = 2, C = 3, H = 7, W = 6, O = 4, K = 3, Ho = H - K + 1, Wo = W - K + 1;
    float* x = sn_load("x.bin", B * C * H * W); float* w = sn_load("w.bin", O * C * K * K);
    float* g = sn_load("g.bin", B * O * Ho * Wo);
    float *y, *gx, *gw;
    cudaMalloc(&y, B * O * Ho * Wo * 4); cudaMalloc(&gx, B * C * H * W * 4); cudaMalloc(&gw, O * C * K * K * 4);
    run0(x, B, C, H, W, w, O, C, K, K, y, B, O, Ho, Wo);           // forward: in0 x, in1 w, out0 y
    sn_save("y.bin", y, B * O * Ho * Wo);
    run1(g, B, O, Ho, Wo, w, O, C, K, K, gx, B, C, H, W);          // backward-data: in0 dy, in1 w, out0 dx
    sn_save("gx.bin", gx, B * C * H * W);
    run2(x, B, C, H, W, g, B, O, Ho, Wo, gw, O, C, K, K);          // backward-filter: in0 x, in1 dy, out0 dw
    sn_save("gw.bin", gw, O * C * K * K);
    std::cout << "stand-alone: three ops ran" << std::endl;
    return 0;
}
"""


def standalone(cudnn, header, lib):
    _, *bodies = cudnn.sources(header, "fp32")
    head = cudnn.sources(header, "fp32")[0]
    dims = lambda n: ", ".join(f"long long {n}_shape{i}" for i in range(4))  # noqa: E731
    args = ", ".join(f"float* {n}_p, {dims(n)}" for n in ("in0", "in1", "out0"))
    src = STANDALONE_STUB + head + "#include <vector>\nnamespace jittor {\n"
    src += "".join(f"void run{i}({args}) {{\n{b}\n}}\n" for i, b in enumerate(bodies)) + "}\n" + _MAIN
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    g = rng.standard_normal((2, 4, 5, 4)).astype(np.float32)
    with tempfile.TemporaryDirectory() as d:
        open(os.path.join(d, "ops.cu"), "w").write(src)
        for name, a in (("x", x), ("w", w), ("g", g)):
            a.tofile(os.path.join(d, name + ".bin"))
        cmd = ["nvcc", "-std=c++17", "ops.cu", "-o", "ops", f"-I{os.path.dirname(header)}",
               f"-Xlinker={lib}", f"-Xlinker=-rpath={os.path.dirname(lib)}"]
        r = subprocess.run(cmd, cwd=d, capture_output=True, text=True)
        print("stand-alone compile:", "ok" if r.returncode == 0 else "FAILED\n" + r.stderr[-3000:])
        if r.returncode:
            return
        r = subprocess.run(["./ops"], cwd=d, capture_output=True, text=True, timeout=120)
        print("stand-alone run: rc", r.returncode, r.stdout.strip(), r.stderr.strip()[-2000:])
        if r.returncode:
            return
        ref = cudnn.reference(x, w, g)
        for name, f, rv in zip(("forward", "input gradient", "weight gradient"), ("y", "gx", "gw"), ref):
            got = np.fromfile(os.path.join(d, f + ".bin"), np.float32).reshape(rv.shape)
            print(f"stand-alone {name}: relative error {np.abs(got - rv).max() / np.abs(rv).max():.2e}")


def main():
    runtime.setup()
    from backend import cudnn
    found = cudnn.find()
    print("found:", found)
    if found is None:
        return
    try:
        standalone(cudnn, found[0], found[1])
    except Exception as e:  # keep going to the Jittor check
        print("stand-alone check raised:", repr(e))
    ok = cudnn.available()
    print("available():", ok, "|", cudnn.unavailable_reason())
    if not ok:
        print("---- whole error text ----")
        print(cudnn._state.get("detail", ""))


if __name__ == "__main__":
    main()
