"""Fault-injection pass: bad files, OS failures on real mounts, kills at random points.

Runs the real commands (run_stylenerf.py, train_style_modules.py) as a user would, on fern's
first six views at 1/64 size with tiny networks, and prints one Markdown row per case: what
was done, the exit code, and the line the user is left with.  docs/FAULTS.md lists a run.

    python bench/fault_pass.py [--work /tmp/faults] [--kills 4] [--seed 0]

Read-only folders and full disks are real tmpfs mounts (`mount -t tmpfs`, root only); where
mounting is refused those cases say so.  Needs the assets (scripts/get_assets.py).
"""
import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASSETS = os.path.abspath(os.environ.get("STYLENERF_ASSETS", os.path.join(ROOT, "..", "shared", "assets")))
ENV = dict(os.environ, STYLENERF_DEVICE="cpu", PYTHONUNBUFFERED="1")
ROWS = []
KILL_RUN = dict(origin_step=400, total_step=550, decoder_step=20, i_weights=10)


def row(case, action, rc, outcome):
    action = action.replace(WORK, "$W")
    ROWS.append((case, action, rc, outcome))
    print(f"| {case} | {action} | {rc} | {outcome} |", flush=True)


def run(argv, timeout=900, env=None):
    out = subprocess.run([sys.executable] + argv, cwd=ROOT, env=env or ENV, capture_output=True, text=True,
                         timeout=timeout)
    return out.returncode, out.stdout, out.stderr


def last_line(text, prefix=("error:", "warning:", "note:")):
    """The line that matters: the last error/warning/note line, else the last line."""
    lines = [ln.strip() for ln in text.replace("\r", "\n").splitlines() if ln.strip()]
    picked = [ln for ln in lines if ln.startswith(prefix)]
    line = (picked or lines or ["(no output)"])[-1]
    return line.replace("|", "\\|").replace(WORK, "$W")


def traceback_in(text):
    return "Traceback" in text


def tiny_scene(folder):
    src = os.path.join(ASSETS, "nerf_llff_data", "fern")
    pb = np.load(os.path.join(src, "poses_bounds.npy"))[:6]
    os.makedirs(os.path.join(folder, "images_64"), exist_ok=True)
    np.save(os.path.join(folder, "poses_bounds.npy"), pb)
    H, W = int(round(pb[0, 4] / 64)), int(round(pb[0, 9] / 64))
    for name in sorted(os.listdir(os.path.join(src, "images_8")))[:6]:
        img = cv2.imread(os.path.join(src, "images_8", name))
        cv2.imwrite(os.path.join(folder, "images_64", name), cv2.resize(img, (W, H), interpolation=cv2.INTER_AREA))


def small_styles(folder):
    os.makedirs(folder, exist_ok=True)
    for name in ("la_muse.jpg", "sketch.png"):
        img = cv2.imread(os.path.join(ASSETS, "styles", name))
        cv2.imwrite(os.path.join(folder, name), cv2.resize(img, (48, 40), interpolation=cv2.INTER_AREA))


def nerf_argv(basedir, expname="e", **over):
    opts = dict(datadir=f"{WORK}/scene", basedir=basedir, expname=expname, styledir=f"{WORK}/styles",
                vae_style_dir=f"{WORK}/styles", vgg_pth_path=VGG, decoder_pth_path=DECODER,
                vae_pth_path=f"{WORK}/no_vae.pkl", factor=64, netdepth=5, netwidth=32, netdepth_fine=5,
                netwidth_fine=32, style_D=4, embed_freq_coor=4, embed_freq_dir=2, N_samples=8, N_samples_fine=8,
                batch_size=256, batch_size_style=256, chunk=4096, origin_step=40, i_weights=5, i_print=5,
                decoder_step=4, i_weights_decoder=1, finetune_size=32, style_size=32, vae_steps=3, vae_w=64,
                total_step=60, gen_factor=1, valid_factor=2, lrate=5e-3)
    opts.update(over)
    argv = ["run_stylenerf.py", "--use_viewdir"]
    for k, v in opts.items():
        argv += [f"--{k}", str(v)]
    return argv


def cut(path, keep=0.5):
    data = open(path, "rb").read()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data[:int(len(data) * keep)])


def copy_cut(src, dst, keep=0.5):
    shutil.copyfile(src, dst)
    cut(dst, keep)
    return dst


def vae_file_cut_short(path):
    """A checkpoint pickle like StyleVAE.save writes, cut in the middle of its arrays."""
    import pickle
    with open(path, "wb") as f:
        pickle.dump({"vae": {"w": np.zeros((512, 64), np.float32)}, "in_dim": 512}, f, protocol=4)
    cut(path)
    return path


def mount(folder, size, ro=False):
    os.makedirs(folder, exist_ok=True)
    opts = f"size={size}" + (",ro" if ro else "")
    return subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", folder], capture_output=True).returncode == 0


def umount(folder):
    subprocess.run(["umount", folder], capture_output=True)


def input_cases():
    """Bad input files and options: each must stop before the NeRF stage with one line."""
    bad = f"{WORK}/bad"
    os.makedirs(bad, exist_ok=True)
    cases = [
        ("VGG file cut short", dict(vgg_pth_path=copy_cut(VGG, f"{bad}/vgg_normalised.pth"))),
        ("VGG file of another layout (the decoder)", dict(vgg_pth_path=DECODER)),
        ("decoder file cut short", dict(decoder_pth_path=copy_cut(DECODER, f"{bad}/decoder.pth"))),
        ("decoder file of another layout (the VGG)", dict(decoder_pth_path=VGG)),
        ("VAE file cut short", dict(vae_pth_path=vae_file_cut_short(f"{bad}/vae.pkl"))),
    ]
    styles = f"{bad}/styles"
    shutil.copytree(f"{WORK}/styles", styles)
    cut(f"{styles}/la_muse.jpg", 0.7)
    cases.append(("style image cut short (JPEG)", dict(styledir=styles)))
    junk = f"{bad}/junk_styles"
    shutil.copytree(f"{WORK}/styles", junk)
    with open(f"{junk}/sketch.png", "wb") as f:
        f.write(b"<html>not found</html>")
    cases.append(("style image not an image", dict(styledir=junk)))
    cases.append(("VAE training style broken", dict(vae_style_dir=junk)))
    os.makedirs(f"{bad}/empty", exist_ok=True)
    cases.append(("empty style folder", dict(styledir=f"{bad}/empty")))
    cases.append(("--style not in the folder", dict(style="monet")))
    cases.append(("--datadir missing", dict(datadir=f"{bad}/nowhere")))
    for name, over in cases:
        t0 = time.time()
        rc, out, err = run(nerf_argv(f"{WORK}/logs_inputs", expname=name.replace(" ", "_").strip("-"), **over))
        started = "NeRF stage:" in out
        row(name, f"run_stylenerf.py, {time.time() - t0:.0f} s", rc,
            ("TRACEBACK " if traceback_in(err) else "") + ("after the NeRF stage started: " if started else "")
            + last_line(err))
    for name, argv in [("option of the wrong type", ["run_stylenerf.py", "--factor", "abc"]),
                       ("option value not a choice", ["run_stylenerf.py", "--device", "gpu"]),
                       ("unknown option", ["run_stylenerf.py", "--nonsense", "1"]),
                       ("--config missing", ["run_stylenerf.py", "--config", f"{bad}/none.txt"]),
                       ("task not a choice", ["train_style_modules.py", "--task", "nope"])]:
        rc, out, err = run(argv)
        lines = len([ln for ln in err.splitlines() if ln.strip()])
        row(name, " ".join(argv), rc, f"{lines} line(s): {last_line(err)}")
    rc, out, err = run(["train_style_modules.py", "--task", "stylize"], env=dict(ENV, STYLENERF_DEVICE="cuda"))
    row("STYLENERF_DEVICE=cuda without a GPU", "train_style_modules.py --task stylize", rc,
        ("TRACEBACK " if traceback_in(err) else "") + last_line(err))
    contents = f"{bad}/contents"
    os.makedirs(contents, exist_ok=True)
    for name in sorted(os.listdir(f"{WORK}/scene/images_64"))[:3]:
        shutil.copyfile(f"{WORK}/scene/images_64/{name}", f"{contents}/{name}")
    cut(f"{contents}/{name}", 0.5)
    argv = ["train_style_modules.py", "--task", "finetune_decoder", "--content_dir", contents, "--style_dir",
            f"{WORK}/styles", "--vgg", VGG, "--decoder", DECODER, "--save_dir", f"{WORK}/dec", "--max_iter", "20",
            "--image_size", "40", "--crop_size", "32", "--batch_size", "2"]
    rc, out, err = run(argv)
    row("content image cut short", "--task finetune_decoder", rc,
        ("after iteration 1: " if os.path.exists(f"{WORK}/dec") else "") + last_line(err))


def os_cases():
    """Real read-only and full tmpfs mounts."""
    ro = f"{WORK}/ro"
    if not mount(ro, "1m", ro=True):
        row("read-only folders", "mount -t tmpfs -o ro", "-", "skipped: mounting refused here")
        return
    rc, out, err = run(nerf_argv(f"{ro}/logs"))
    row("read-only --basedir", "ro tmpfs", rc, last_line(err))
    rc, out, err = run(["train_style_modules.py", "--task", "stylize", "--content",
                        f"{WORK}/scene/images_64/image000.png", "--style_image", f"{WORK}/styles/la_muse.jpg",
                        "--output", f"{ro}/out.png", "--vgg", VGG, "--decoder", DECODER])
    row("read-only --output", "--task stylize, ro tmpfs", rc, last_line(err))
    rc, out, err = run(["train_style_modules.py", "--task", "finetune_decoder", "--content_dir",
                        f"{WORK}/scene/images_64", "--style_dir", f"{WORK}/styles", "--vgg", VGG, "--save_dir",
                        f"{ro}/pre", "--max_iter", "20", "--image_size", "40", "--crop_size", "32"])
    row("read-only --save_dir", "--task finetune_decoder, ro tmpfs", rc, last_line(err))
    umount(ro)

    full = f"{WORK}/full"
    if not mount(full, "4m"):
        row("full disk", "mount -t tmpfs -o size=4m", "-", "skipped: mounting refused here")
        return
    # NeRF checkpoints of width 128 are ~2.4 MB with Adam's moments: the second one does not fit
    argv = nerf_argv(f"{full}/logs", netwidth=128, netwidth_fine=128, origin_step=10, total_step=10, i_weights=5)
    rc, out, err = run(argv)
    kept = sorted(f for f in os.listdir(f"{full}/logs/e") if f.startswith("nerf_"))
    row("disk full at a NeRF checkpoint", "4 MB tmpfs", rc, f"{last_line(err)}; left: {', '.join(kept)}")
    subprocess.run(["mount", "-o", "remount,size=16m", full], capture_output=True)
    rc, out, err = run(argv)
    row("... space added (remount 16 MB), same command", "rerun", rc,
        last_line(out + err, ("resumed", "error:")))
    umount(full)
    if not mount(full, "64m"):
        return
    argv = nerf_argv(f"{full}/logs", origin_step=10, total_step=20)
    run(argv + ["--total_step", "10"])  # the NeRF alone
    free = shutil.disk_usage(full).free
    with open(f"{full}/filler", "wb") as f:
        f.write(b"\0" * (free - 20 * 1024))
    rc, out, err = run(argv)
    row("disk full writing geometry data", "64 MB tmpfs filled to 20 KB", rc, last_line(err))
    os.remove(f"{full}/filler")
    rc, out, err = run(argv)
    row("... space freed, same command", "rerun", rc, "finished" if rc == 0 else last_line(err))
    umount(full)


def kill_cases(kills, rng):
    """kill -9 at random times over the whole pipeline, until a run finishes."""
    argv = nerf_argv(f"{WORK}/logs_kill", **KILL_RUN)
    run(argv + ["--expname", "timing"])  # Jittor compiles its kernels for these sizes once
    t0 = time.time()
    run(argv + ["--expname", "timing2"])
    whole = time.time() - t0  # a run without kills, warm: the kills fall anywhere in such a run
    done, n, outcomes = False, 0, [f"an uninterrupted run takes {whole:.0f} s"]
    while not done and n < 4 * kills:
        n += 1
        proc = subprocess.Popen([sys.executable] + argv, cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        # each run resumes: spread the kills so that most fall before the work is done
        delay = rng.uniform(2.0, max(4.0, whole / kills)) if n <= kills else None
        try:
            out, err = proc.communicate(timeout=delay)
            done = proc.returncode == 0
            outcomes.append(f"run {n}: rc {proc.returncode}"
                            + ("" if done else f" ({last_line(err)})"))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            out, err = proc.communicate()
            bad = [ln for ln in err.splitlines() if ln.startswith("error:")]
            outcomes.append(f"run {n}: killed after {delay:.1f} s" + (f" but {bad[-1]}" if bad else ""))
    killed = sum("killed" in o for o in outcomes)
    row(f"kill -9 at {killed} random times", "tiny pipeline, the same command after each kill",
        "0" if done else "!", "; ".join(outcomes))
    exp = f"{WORK}/logs_kill/e"
    left = [f for f in os.listdir(exp) if ".tmp" in f] + [f for f in os.listdir(f"{exp}/geometry") if ".tmp" in f]
    row("... partial files left", "after the finished run", "-", ", ".join(left) or "none")


def damage_cases():
    """Files of a finished experiment damaged, then the same command (or a render) again."""
    exp = f"{WORK}/logs_kill/e"
    argv = nerf_argv(f"{WORK}/logs_kill", **KILL_RUN)
    for name, target in [("newest NeRF checkpoint cut short", "nerf"), ("newest style checkpoint cut short", "style"),
                         ("a geometry view cut short", "geometry/view_002.npz"),
                         ("stylized targets cut short", "targets/000_la_muse.npy"),
                         ("fine-tuned decoder.pkl cut short", "decoder.pkl")]:
        if target in ("nerf", "style"):
            target = sorted(f for f in os.listdir(exp) if f.startswith(target + "_") and f.endswith(".pkl"))[-1]
        cut(os.path.join(exp, target), 0.5)
        render = "style" in target or "targets" in target  # a render reads the saved targets too
        rc, out, err = run(argv + (["--render_train_style"] if render else []))
        row(name, "same command" + (" with --render_train_style" if render else ""), rc,
            last_line(out + err, ("warning:", "error:")))
    for f in sorted(os.listdir(exp)):
        if f.startswith("nerf_") and f.endswith(".pkl"):
            cut(os.path.join(exp, f), 0.3)
    rc, out, err = run(nerf_argv(f"{WORK}/logs_kill", **dict(KILL_RUN, total_step=KILL_RUN["origin_step"])))
    row("every NeRF checkpoint cut short", "same command", rc, last_line(out + err, ("warning:", "error:")))


def signal_cases():
    """fern.txt on the CPU: the long-run note, then SIGTERM (as `timeout` sends); the test
    suite started in the background by a script (SIGINT ignored)."""
    proc = subprocess.Popen([sys.executable, "run_stylenerf.py", "--config", "configs/fern.txt", "--basedir",
                             f"{WORK}/logs_fern"], cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    note, t0 = None, time.time()
    for line in iter(proc.stdout.readline, ""):
        if line.startswith("note:") or time.time() - t0 > 600:
            note = line.strip() if line.startswith("note:") else None
            proc.send_signal(signal.SIGTERM)
            break
    rest = proc.communicate()[0]
    row("fern.txt on the CPU", f"note after {time.time() - t0:.0f} s, then SIGTERM", "-",
        (note or "no note").replace(WORK, "$W"))
    row("... SIGTERM", "kill -TERM", proc.returncode, last_line(rest, ("interrupted", "error:")))
    log = f"{WORK}/suite.log"
    rc = subprocess.run(["bash", "-c", f"bash scripts/test.sh tests/test_interrupt.py > {log} 2>&1 & wait $!"],
                        cwd=ROOT, env=ENV).returncode
    row("test suite run in the background by a script", "bash -c 'bash scripts/test.sh tests/test_interrupt.py"
        " > log 2>&1 & wait'", rc, last_line(open(log).read(), ("FAILED",)))


def main():
    global WORK, VGG, DECODER
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", default="/tmp/stylenerf_faults")
    p.add_argument("--kills", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", default="inputs,os,kill,damage,signals")
    a = p.parse_args()
    WORK = os.path.abspath(a.work)
    shutil.rmtree(WORK, ignore_errors=True)
    VGG = os.path.join(ASSETS, "pretrained", "vgg_normalised_conv3_1.pth")
    DECODER = os.path.join(ASSETS, "pretrained", "feature_invertor_conv3_1.pth")
    tiny_scene(f"{WORK}/scene")
    small_styles(f"{WORK}/styles")
    print("| case | what was done | exit | what the user sees |\n|---|---|---|---|", flush=True)
    only = a.only.split(",")
    if "inputs" in only:
        input_cases()
    if "os" in only:
        os_cases()
    if "kill" in only:
        kill_cases(a.kills, random.Random(a.seed))
    if "damage" in only and "kill" in only:
        damage_cases()
    if "signals" in only:
        signal_cases()


if __name__ == "__main__":
    main()
