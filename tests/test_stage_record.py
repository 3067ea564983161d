"""core/stage_record.py: the per-stage record beside Jittor's kernels and what a stage line says."""
from types import SimpleNamespace

from core import stage_record


def test_the_expectation_follows_the_record(tmp_path):
    path = str(tmp_path / "rec.json")
    first = stage_record.expectation("6 style training", "abc", on_cpu=False, path=path, cache_empty=True)
    assert first == ("Jittor's cache is empty: it compiles this stage's kernels before the first step "
                     "(about 3 minutes on an H200 with an empty cache)")
    unrecorded = stage_record.expectation("6 style training", "abc", True, path)
    assert "no earlier run of this stage recorded" in unrecorded and "about 14 s on a 2-core CPU" in unrecorded
    unmeasured = stage_record.expectation("1 NeRF", "abc", on_cpu=False, path=path)
    assert "compile its kernels" in unmeasured and "about" not in unmeasured
    stage_record.save("6 style training", 190.4, 25, "abc", path=path)
    assert stage_record.expectation("6 style training", "abc", False, path) == \
        "expected about 3 minutes, as the last run with these options here"
    assert "compiled by an earlier run" in stage_record.expectation("6 style training", "xyz", False, path)
    stage_record.save("1 NeRF", 12.0, 0, "abc", path=path)  # a second stage keeps the first
    assert set(stage_record.load(path)) == {"6 style training", "1 NeRF"}
    assert stage_record.load(path)["6 style training"] == {"abc": {"seconds": 190.4, "kernels": 25}}
    # a run with other options in between keeps this one's time; the oldest of KEEP + 1 goes
    stage_record.save("6 style training", 5.0, 0, "xyz", path=path)
    assert "expected about 3 minutes" in stage_record.expectation("6 style training", "abc", False, path)
    for k in range(stage_record.KEEP):
        stage_record.save("6 style training", 1.0, 0, f"other{k}", path=path)
    runs = stage_record.load(path)["6 style training"]
    assert len(runs) == stage_record.KEEP and "abc" not in runs and "other0" in runs


def test_a_damaged_record_reads_as_empty(tmp_path):
    path = tmp_path / "rec.json"
    path.write_text("{not json")
    assert stage_record.load(str(path)) == {}
    assert "no earlier run" in stage_record.expectation("6 style training", "abc", True, str(path))
    stage_record.save("6 style training", 1.0, 0, "abc", path=str(path))  # replaced, readable again
    assert "6 style training" in stage_record.load(str(path))


def test_the_settings_digest_ignores_names_and_time_limits():
    a = SimpleNamespace(expname="a", basedir="x", time_limit=0, total_step=10, lrate=1e-3)
    b = SimpleNamespace(expname="b", basedir="y", time_limit=5, total_step=10, lrate=1e-3)
    c = SimpleNamespace(expname="a", basedir="x", time_limit=0, total_step=11, lrate=1e-3)
    assert stage_record.settings_digest(a) == stage_record.settings_digest(b) != stage_record.settings_digest(c)


def test_a_record_of_another_layout_is_read_as_no_runs(tmp_path):
    path = tmp_path / "rec.json"
    path.write_text('{"6 style training": {"seconds": 3.0, "kernels": 1, "settings": "abc"}}')
    assert "no earlier run" in stage_record.expectation("6 style training", "abc", True, str(path))
    stage_record.save("6 style training", 2.0, 0, "abc", path=str(path))
    assert stage_record.load(str(path))["6 style training"] == {"abc": {"seconds": 2.0, "kernels": 0}}
