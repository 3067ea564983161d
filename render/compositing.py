"""Volume compositing of samples along rays (nerf-pytorch's raw2outputs), as one fused kernel.

delta_i = (z_{i+1} - z_i) * |d| (last: 1e10 * |d|); x_i = relu(sigma_i + noise_i) delta_i;
alpha_i = 1 - exp(-x_i); T_i = prod_{j<i} (exp(-x_j) + 1e-10) (= 1 - alpha_j + 1e-10, written so
that nothing cancels); w_i = alpha_i T_i; rgb = sum w_i c_i; depth = sum w_i z_i; acc = sum w_i.

Built from Jittor ops this was about 15 kernel launches forward and as many backward per level
(2 levels per NeRF step), and a GPU NeRF step is bound by the cost per launch (README,
Measured).  Here one `jt.code` kernel (one thread per ray, the samples in a loop, double
accumulators) computes all four outputs, and one more the gradients, by hand:

    u_i = g_rgb . c_i + g_depth z_i + g_acc (- sum g_rgb with a white background) + g_w_i
    dL/dc_i = w_i g_rgb
    dL/dx_k = u_k exp(-x_k) T_k - exp(-x_k) / (exp(-x_k) + 1e-10) * sum_{i>k} u_i w_i
    dL/dsigma_k = dL/dx_k delta_k [sigma_k + noise_k > 0]

(w_i for i > k depends on x_k only through the factor exp(-x_k) + 1e-10 of T_i).  The
backward pass recomputes the forward quantities rather than storing them.  Outputs whose
gradient is not needed (None) cost nothing: the backward kernel is generated for the gradients
that arrive.  No gradient flows to z_vals or rays_d (sample positions are not learnt).
"""
import functools

import jittor as jt

from backend.kernels import per_row_kernel

# Loop over one ray's samples; RGB, SIG, NOISE, Z, DIR point at the ray's rows.  Leaves the
# per-sample quantities of sample i in delta, e, w and the running product in T (its own scope,
# so a kernel can loop twice).
_SAMPLE_LOOP_HEAD = """
  {
    const double len = sqrt((double)DIR[0] * DIR[0] + (double)DIR[1] * DIR[1] + (double)DIR[2] * DIR[2]);
    double T = 1.0;
    for (long long i = 0; i < S; i++) {
        const double delta = (i < S - 1 ? (double)Z[i + 1] - Z[i] : 1e10) * len;
        const double s = (double)SIG[i] + NOISE_I;
        const double x = s > 0 ? s * delta : 0.0;
        const double e = exp(-x);
        const double w = (1.0 - e) * T;
"""
_SAMPLE_LOOP_TAIL = """
        if (i < S - 1) T *= e + 1e-10;
    }
  }
"""

_FORWARD = """
    double c0 = 0, c1 = 0, c2 = 0, dep = 0, acc = 0;
""" + _SAMPLE_LOOP_HEAD + """
        OUT_W[i] = (float)w;
        c0 += w * RGB[3 * i]; c1 += w * RGB[3 * i + 1]; c2 += w * RGB[3 * i + 2];
        dep += w * Z[i]; acc += w;
""" + _SAMPLE_LOOP_TAIL + """
    const double bg = WHITE ? 1.0 - acc : 0.0;
    OUT_RGB[0] = (float)(c0 + bg); OUT_RGB[1] = (float)(c1 + bg); OUT_RGB[2] = (float)(c2 + bg);
    OUT_DEPTH[0] = (float)dep; OUT_ACC[0] = (float)acc;
"""

# two passes over the samples: the total of u_i w_i, then each sample's gradient with the
# suffix sum (total - prefix) of u_i w_i over the samples behind it
_U_I = "(GC_DOT + GD_TERM + GA_TERM + GW_TERM)"
_BACKWARD = """
    double total = 0;
""" + _SAMPLE_LOOP_HEAD + """
        total += U_I * w;
""" + _SAMPLE_LOOP_TAIL + """
    double prefix = 0;
""" + _SAMPLE_LOOP_HEAD + """
        const double u = U_I;
        prefix += u * w;
        double dx = u * e * T;
        if (i < S - 1) dx -= e / (e + 1e-10) * (total - prefix);
        OUT_DSIG[i] = (float)(s > 0 ? dx * delta : 0.0);
        OUT_DRGB[3 * i] = (float)(w * GC0); OUT_DRGB[3 * i + 1] = (float)(w * GC1);
        OUT_DRGB[3 * i + 2] = (float)(w * GC2);
""" + _SAMPLE_LOOP_TAIL


def _per_ray_kernel(body, name, pointers):
    """(cpu_src, cuda_src) running `body` once per ray r; `pointers` maps the names used in
    the body to (pointer expression, values per ray), e.g. {"SIG": ("in1_p", "S")}."""
    setup = "const long long S = in1_shape1;\n" + "".join(
        f"    auto* {name_} = {ptr} + r * ({per_ray});\n" for name_, (ptr, per_ray) in pointers.items())
    return per_row_kernel(setup + body, name, "in1_shape0")


def _substituted(body, words):
    for key, value in words.items():
        body = body.replace(key, value)
    return body


def _input_pointers(has_noise):
    pointers = dict(RGB=("in0_p", "3 * S"), SIG=("in1_p", "S"), Z=("in2_p", "S"), DIR=("in3_p", "3"))
    if has_noise:
        pointers["NOISE"] = ("in4_p", "S")
    return pointers


def _common_words(has_noise, white):
    return {"NOISE_I": "(double)NOISE[i]" if has_noise else "0.0", "WHITE": "1" if white else "0"}


def _kernel_args(body, name, pointers):
    cpu, cuda = _per_ray_kernel(body, name, pointers)
    return dict(cpu_src=cpu, cuda_src=cuda, cpu_header="#include <cmath>", cuda_header="#include <cmath>")


@functools.lru_cache(maxsize=None)
def _forward_sources(has_noise, white):
    pointers = dict(_input_pointers(has_noise), OUT_RGB=("out0_p", "3"), OUT_DEPTH=("out1_p", "1"),
                    OUT_ACC=("out2_p", "1"), OUT_W=("out3_p", "S"))
    return _kernel_args(_substituted(_FORWARD, _common_words(has_noise, white)), "composite", pointers)


@functools.lru_cache(maxsize=None)
def _backward_sources(has_noise, white, has_gc, has_gd, has_ga, has_gw):
    """Sources for the gradients that arrive (inputs: the forward's, then g_rgb, g_depth, g_acc,
    g_weights in that order, each only when present)."""
    pointers = _input_pointers(has_noise)
    n_inputs = len(pointers)
    for key, present, per_ray in (("GC", has_gc, "3"), ("GD", has_gd, "1"), ("GA", has_ga, "1"), ("GW", has_gw, "S")):
        if present:
            pointers[key] = (f"in{n_inputs}_p", per_ray)
            n_inputs += 1
    words = dict(_common_words(has_noise, white), U_I=_U_I,
                 GC_DOT="0.0", GD_TERM="0.0", GA_TERM="0.0", GW_TERM="0.0", GC0="0.0", GC1="0.0", GC2="0.0")
    if has_gc:
        words.update(GC0="(double)GC[0]", GC1="(double)GC[1]", GC2="(double)GC[2]",
                     GC_DOT="((double)GC[0] * RGB[3 * i] + (double)GC[1] * RGB[3 * i + 1] + "
                            "(double)GC[2] * RGB[3 * i + 2]"
                            + (" - (double)GC[0] - GC[1] - GC[2])" if white else ")"))
    if has_gd:
        words["GD_TERM"] = "(double)GD[0] * Z[i]"
    if has_ga:
        words["GA_TERM"] = "(double)GA[0]"
    if has_gw:
        words["GW_TERM"] = "(double)GW[i]"
    pointers.update(OUT_DRGB=("out0_p", "3 * S"), OUT_DSIG=("out1_p", "S"))
    return _kernel_args(_substituted(_BACKWARD, words), "composite_grad", pointers)


class _Composite(jt.Function):
    """Inputs rgb [R,S,3], sigma [R,S], noise [R,S] or None, z [R,S], rays_d [R,3] ->
    (rgb [R,3], depth [R,1], acc [R,1], weights [R,S])."""

    def execute(self, rgb, sigma, noise, z, d, white):
        self.inputs = [rgb, sigma, z, d] + ([noise] if noise is not None else [])
        self.has_noise, self.white = noise is not None, white
        n, s = sigma.shape
        return tuple(jt.code([(n, 3), (n, 1), (n, 1), (n, s)], ["float32"] * 4, self.inputs,
                             **_forward_sources(self.has_noise, white)))

    def grad(self, g_rgb, g_depth, g_acc, g_w):
        grads = [g_rgb, g_depth, g_acc, g_w]
        rgb, sigma = self.inputs[0], self.inputs[1]
        src = _backward_sources(self.has_noise, self.white, *(g is not None for g in grads))
        d_rgb, d_sigma = jt.code([rgb.shape, sigma.shape], ["float32", "float32"],
                                 self.inputs + [g for g in grads if g is not None], **src)
        self.inputs = None
        return d_rgb, d_sigma, None, None, None, None


def composite(rgb, sigma_raw, z_vals, rays_d, noise_std=0.0, white_bkgd=False):
    """rgb [R,S,3] in [0,1], sigma_raw [R,S], z_vals [R,S], rays_d [R,3] ->
    dict(rgb [R,3], depth [R], acc [R], weights [R,S]).

    noise_std > 0 adds N(0, noise_std^2) to sigma_raw before the ReLU (training regulariser).
    white_bkgd composites onto white: rgb + (1 - acc).
    """
    n_rays, n_samples = sigma_raw.shape
    if tuple(rgb.shape) != (n_rays, n_samples, 3) or tuple(z_vals.shape) != (n_rays, n_samples) \
            or tuple(rays_d.shape) != (n_rays, 3):
        raise ValueError(f"composite: expected rgb [R,S,3], sigma [R,S], z [R,S], rays_d [R,3]; got "
                         f"{rgb.shape}, {sigma_raw.shape}, {z_vals.shape}, {rays_d.shape}")
    f32 = [v if v.dtype == "float32" else v.float32() for v in (rgb, sigma_raw, z_vals, rays_d)]
    rgb, sigma_raw, z_vals, rays_d = f32
    noise = jt.randn(sigma_raw.shape, dtype="float32") * noise_std if noise_std > 0 else None
    out_rgb, depth, acc, weights = _Composite.apply(rgb, sigma_raw, noise, z_vals.detach(), rays_d.detach(),
                                                    bool(white_bkgd))
    return {"rgb": out_rgb, "depth": depth.reshape((n_rays,)), "acc": acc.reshape((n_rays,)), "weights": weights}
