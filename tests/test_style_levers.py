"""bench/style_levers.py: its job runner and option parsing (the whole run on the tiny scene is in
tests/test_pipeline.py)."""
import os
import signal
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench import style_levers  # noqa: E402

WAITS_FOR_TERM = ("import signal, sys, time\n"
                  "signal.signal(signal.SIGTERM, lambda *a: sys.exit(3))\n"
                  "time.sleep(60)\n")


def test_jobs_run_at_most_n_at_a_time_and_report_exit_codes(tmp_path):
    jobs = [(f"j{i}", [sys.executable, "-c", f"import time, sys; time.sleep(0.3); sys.exit({i})"],
             str(tmp_path / f"j{i}.log")) for i in range(3)]
    t0 = time.time()
    done = style_levers.run_all(jobs, 2)
    assert {n: rc for n, (rc, _) in done.items()} == {"j0": 0, "j1": 1, "j2": 2}
    assert time.time() - t0 >= 1.0  # two rounds of one-second polls at least
    assert "sys.exit(1)" in open(tmp_path / "j1.log").read()  # the command heads its log


def test_a_term_signal_is_passed_on_to_the_running_jobs_and_no_more_start(tmp_path):
    jobs = [(f"j{i}", [sys.executable, "-c", WAITS_FOR_TERM], str(tmp_path / f"j{i}.log")) for i in range(2)]
    threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
    t0 = time.time()
    with pytest.raises(SystemExit, match="run the same command again"):
        style_levers.run_all(jobs, 1)
    assert time.time() - t0 < 20  # the running job stopped at once; the second never started
    assert not os.path.exists(tmp_path / "j1.log")


def test_variant_specs():
    assert style_levers.parse_variant('f2=--target_factor 2 --style "a b"') == \
        ("f2", ["--target_factor", "2", "--style", "a b"])
    assert style_levers.parse_variant("base=") == ("base", [])
    with pytest.raises(SystemExit, match="name="):
        style_levers.parse_variant("no equals sign")
    with pytest.raises(SystemExit, match="name="):
        style_levers.parse_variant("bad-name=--x 1")


def test_training_time_sums_the_runs_that_trained_steps_only(tmp_path):
    d = str(tmp_path)
    open(tmp_path / "style_100.pkl", "wb").close()
    # a run cut by a time limit after training to step 100 (from none)
    assert style_levers.add_training_time(d, 0, 168.0) == 168.0
    open(tmp_path / "style_300.pkl", "wb").close()
    assert style_levers.add_training_time(d, 100, 250.0) == 418.0
    # a rerun that finds the steps done adds nothing
    assert style_levers.add_training_time(d, 300, 40.0) == 418.0
    assert open(tmp_path / "levers_style_seconds.txt").read() == "418.0\n"


def test_on_done_hears_of_every_job(tmp_path):
    jobs = [(f"j{i}", [sys.executable, "-c", "pass"], str(tmp_path / f"j{i}.log")) for i in range(2)]
    heard = []
    style_levers.run_all(jobs, 2, on_done=lambda n, rc, s: heard.append((n, rc)))
    assert sorted(heard) == [("j0", 0), ("j1", 0)]


def test_eval_only_takes_the_recorded_seconds_and_refuses_untrained_variants(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    open(a / "style_120500.pkl", "wb").close()
    style_levers.add_training_time(str(a), 0, 210.0)
    with pytest.raises(SystemExit, match="--eval_only: no style checkpoint .* for b"):
        style_levers.trained_so_far({"a": str(a), "b": str(b)})
    open(b / "style_120300.pkl", "wb").close()  # trained, its seconds not recorded
    seconds = style_levers.trained_so_far({"a": str(a), "b": str(b)})
    assert seconds["a"] == 210.0 and seconds["b"] != seconds["b"]  # NaN: not known


def test_eval_only_without_an_experiment_says_so(tmp_path):
    with pytest.raises(SystemExit, match="--eval_only: no experiment folder"):
        style_levers.main(["--config", "configs/fern_cpu.txt", "--common", f"--basedir {tmp_path} --expname none",
                           "--variant", "a=", "--eval_only"])
    with pytest.raises(SystemExit, match="leave nothing to do"):
        style_levers.main(["--variant", "a=", "--eval_only", "--no_eval"])


def test_a_variant_without_recorded_seconds_says_so_in_the_table():
    assert style_levers.stage_time(361.4) == "361 s"
    assert style_levers.stage_time(float("nan")) == "time not recorded"
    assert style_levers.stage_time(None) == "time not recorded"


def test_the_bases_one_step_style_checkpoint_is_cleared_but_a_real_training_is_kept(tmp_path):
    for name in ("style_000031.pkl", "style_inputs.json", "nerf_000030.pkl"):
        (tmp_path / name).write_bytes(b"x")
    style_levers.clear_base_style_step(str(tmp_path), 30)
    assert sorted(os.listdir(tmp_path)) == ["nerf_000030.pkl"]
    for name in ("style_000031.pkl", "style_000500.pkl", "style_inputs.json"):
        (tmp_path / name).write_bytes(b"x")
    style_levers.clear_base_style_step(str(tmp_path), 30)
    assert sorted(os.listdir(tmp_path)) == ["nerf_000030.pkl", "style_000031.pkl", "style_000500.pkl",
                                            "style_inputs.json"]


def test_variants_share_the_bases_files_and_link_its_sample_cache_file_by_file(tmp_path):
    from core.cache_key import refresh, write_key
    base, dst = tmp_path / "base", tmp_path / "base_v"
    (base / "geometry").mkdir(parents=True)
    (base / "style_samples").mkdir()
    for name in ("nerf_005000.pkl", "style_005001.pkl", "args.txt", "levers_prepare.log"):
        (base / name).write_bytes(b"x")
    samples = base / "style_samples"
    write_key(str(samples / "meta.json"), {"k": 1})
    for name in ("view_000.npz", "view_000.json", "view_001.tmp.npz"):
        (samples / name).write_bytes(b"v")
    style_levers.share(str(base), str(dst))
    assert sorted(os.listdir(dst)) == ["geometry", "nerf_005000.pkl", "style_samples"]
    assert os.path.islink(dst / "geometry") and not os.path.islink(dst / "style_samples")
    assert os.path.samefile(dst / "nerf_005000.pkl", base / "nerf_005000.pkl")
    assert sorted(os.listdir(dst / "style_samples")) == ["meta.json", "view_000.json", "view_000.npz"]
    assert os.path.samefile(dst / "style_samples" / "view_000.npz", samples / "view_000.npz")
    # a variant with the same sampling options reuses the links; one with others clears them and
    # writes its own key, and the base's cache stays as it was
    mine = dst / "style_samples"
    assert refresh(str(mine / "meta.json"), {"k": 1}, log=lambda *_: None)

    def clear():
        for f in os.listdir(mine):
            if f.startswith("view_"):
                os.remove(mine / f)
    assert not refresh(str(mine / "meta.json"), {"k": 32}, clear, log=lambda *_: None)
    assert sorted(os.listdir(mine)) == ["meta.json"]
    assert refresh(str(samples / "meta.json"), {"k": 1}, log=lambda *_: None)
    assert sorted(os.listdir(samples)) == ["meta.json", "view_000.json", "view_000.npz", "view_001.tmp.npz"]
    # sharing again keeps the variant's own cache
    style_levers.share(str(base), str(dst))
    assert sorted(os.listdir(mine)) == ["meta.json"]
    assert refresh(str(mine / "meta.json"), {"k": 32}, log=lambda *_: None)


def test_variant_rows_read_the_report_and_give_the_carried_frames_ratio(tmp_path):
    # style losses 3.0 (NeRF), 2.0 (AdaIN), 2.9 (AdaIN carried in 3D): ratios 1.5 and 1.45
    ev = tmp_path / "eval"
    ev.mkdir()
    (ev / "style_strength.csv").write_text(
        "style,method,style_loss,style_gain,content_distance,sharpness\n"
        "a.jpg,photoreal NeRF,6.0,0,0,1\na.jpg,stylized NeRF,3.0,0.5,2.5,1.2\n"
        "a.jpg,per-frame AdaIN,2.0,0.67,2.6,1.1\na.jpg,AdaIN carried in 3D,2.9,0.52,3.5,1.9\n")
    (ev / "summary.csv").write_text("style,consistency_ratio_k1,consistency_ratio_k7\na,0.5,0.45\n")
    rows = style_levers.variant_rows("v", str(tmp_path))
    assert len(rows) == 1 and rows[0]["style"] == "a"
    assert rows[0]["style_loss_ratio"] == pytest.approx(1.5)
    assert rows[0]["carried_style_loss_ratio"] == pytest.approx(1.45)
    assert rows[0]["consistency_ratio_k7"] == pytest.approx(0.45)
    lines = style_levers.table(rows, {"v": 100.0})
    assert lines[0].endswith("| consistency k1 | consistency k7 | AdaIN carried in 3D: ratio | style stage |")
    assert "| 1.50x |" in lines[2] and lines[2].endswith("| 0.50 | 0.45 | 1.45 | 0 steps, 100 s |")
