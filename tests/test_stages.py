"""pipeline/stages: the stage list runs in order from the first unfinished stage."""
from types import SimpleNamespace

from pipeline import stages
from pipeline.stages import STAGES, Stage, run_stages


class FakeRun:
    def __init__(self, **args):
        self.products, self.calls = {}, []
        self.args = SimpleNamespace(**args)


def _stage(name, done, log):
    def run(r):
        r.calls.append(name)
        return {name: True}
    return Stage(name, (name,), lambda r: done, run, skip=lambda r: r.calls.append("skip " + name))


def test_resumes_at_the_first_unfinished_stage_and_runs_the_rest_in_order(monkeypatch):
    monkeypatch.setattr(stages.timing, "stage", lambda name: __import__("contextlib").nullcontext())
    logs = []
    fake = [_stage("1 a", True, logs), _stage("2 b", False, logs), _stage("3 c", True, logs)]
    r = FakeRun()
    assert run_stages(r, fake, logs.append) == 1
    # the finished stage before it is skipped (its skip hook runs); every later one runs, done or not
    assert r.calls == ["skip 1 a", "2 b", "3 c"]
    assert logs[:3] == ["stage 1 a: done", "stage 2 b: to run", "stage 3 c: to run"]
    assert any(line.startswith("stage 3 c: finished in") for line in logs)


def test_all_done_runs_nothing():
    r = FakeRun()
    assert run_stages(r, [_stage("1 a", True, None), _stage("2 b", True, None)], lambda *_: None) is None
    assert r.calls == []


def test_the_six_stages_in_order_and_what_each_makes():
    assert [s.name for s in STAGES] == ["1 NeRF", "2 geometry", "3 decoder fine-tune", "4 stylized targets",
                                       "5 latents (VAE)", "6 style training"]
    made = [n for s in STAGES for n in s.makes]
    assert len(made) == len(set(made))
    assert stages.stages_for(SimpleNamespace(total_step=10, origin_step=10)) == STAGES[:1]
    assert stages.stages_for(SimpleNamespace(total_step=11, origin_step=10)) == STAGES


def test_a_stage_line_counts_the_kernels_jittor_compiled_for_it(monkeypatch):
    monkeypatch.setattr(stages.timing, "stage", lambda name: __import__("contextlib").nullcontext())
    counts = iter([10, 10, 52, 52, 52, 52])  # (empty?, before, after) a stage: stage 1 compiles 42, stage 2 none
    monkeypatch.setattr(stages, "jit_kernels", lambda: next(counts))
    logs = []
    run_stages(FakeRun(), [_stage("1 a", False, logs), _stage("2 b", False, logs)], logs.append)
    finished = [line for line in logs if "finished in" in line]
    assert finished[0].startswith("stage 1 a: finished in") and finished[0].endswith("(42 kernels compiled by Jittor)")
    assert finished[1].startswith("stage 2 b: finished in") and "kernels" not in finished[1]



def test_a_stage_line_says_what_to_expect_before_the_stage_runs(monkeypatch):
    """Not recorded with this Jittor cache: it may compile; run again with the same options: the last
    time; with other options: compiled before (core/stage_record.py)."""
    monkeypatch.setattr(stages.timing, "stage", lambda name: __import__("contextlib").nullcontext())
    monkeypatch.setattr("models.layers.on_gpu", lambda: False)

    def lines(**args):
        logs = []
        run_stages(FakeRun(**args), [_stage("3 decoder fine-tune", False, logs)], logs.append)
        return [line for line in logs if line.startswith("stage 3 decoder fine-tune (1/1)")]
    first = lines(total_step=5)
    assert len(first) == 1 and "no earlier run of this stage recorded" in first[0] and "38 s on a 2-core CPU" in first[0]
    again = lines(total_step=5)
    assert "as the last run with these options here" in again[0]
    other = lines(total_step=6)
    assert "compiled by an earlier run here" in other[0]
