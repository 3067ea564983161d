"""bench/device_run.sh: every step its usage names has its case, no case is unnamed, and leversown
returns the NeRF it trained for a later machine to start from."""
import os
import re
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_named_step_has_a_case_and_every_case_is_named():
    text = open(os.path.join(ROOT, "bench", "device_run.sh")).read()
    usage = re.search(r"unknown step '\$step' \(([^)]*)\)", text).group(1)
    named = {s.strip() for s in usage.split("|")}
    cases = set(re.findall(r"^  ([a-z]+)\)", text, re.M))
    # the header's usage lines: "#   probe | tests [files] | ...", "#   | render <seconds> ..."
    header_lines = "\n".join(line for line in text.splitlines()[:20] if line.startswith("#   "))
    header = set(re.findall(r"(?:^#   (?:\| )?|\| )([a-z]+)", header_lines, re.M))
    assert named == cases, named ^ cases
    assert named == header, named ^ header
    assert {"render", "tidycheck", "levers", "leversown"} <= cases


STUB_PYTHON = """#!/usr/bin/env bash
# python3 for this test: pip and the asset step do nothing; style_levers.py records its
# arguments and leaves its base experiment's log (and, for the fresh base experiment, the NeRF
# that stage 1 would have trained)
case "$*" in
  *style_levers.py*) echo "$*" >> "$CALLS"
                     case "$*" in *fq_fresh*) base=logs/fq_fresh
                                              mkdir -p $base && echo weights > $base/nerf_005000.pkl ;;
                                  *) base=logs/fq ;; esac
                     echo prepared > $base/levers_prepare.log ;;
esac
exit 0
"""


def _leversown(root, out, env):
    return subprocess.run(["bash", "bench/device_run.sh", "leversown", "60", "--variant", "a="],
                          cwd=root, env=dict(env, OUT=str(out)), capture_output=True, text=True)


def test_leversown_returns_its_fresh_nerf_and_a_later_machine_starts_from_it(tmp_path):
    root = tmp_path / "repo"
    for rel in ("bench/device_run.sh", "scripts/device_env.sh"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.join(ROOT, rel), root / rel)
    stub = tmp_path / "bin" / "python3"
    stub.parent.mkdir()
    stub.write_text(STUB_PYTHON)
    stub.chmod(0o755)
    calls = tmp_path / "calls.txt"
    env = dict(os.environ, PATH=f"{stub.parent}:{os.environ['PATH']}", CALLS=str(calls),
               STYLENERF_OFFLINE=str(tmp_path / "offline"))
    # a fresh machine: stages 1-5 from scratch, and the NeRF comes back as fq_inputs.tgz
    first = _leversown(root, tmp_path / "out1", env)
    assert first.returncode == 0, first.stderr
    packed = tmp_path / "out1" / "fq_inputs.tgz"
    assert packed.is_file()
    assert "--expname fq_fresh" in calls.read_text()
    # the next fresh machine, given that archive, starts from the same NeRF with the config's
    # decoder (no fine-tuned one in the inputs)
    shutil.rmtree(root / "logs")
    (tmp_path / "offline" / "resume").mkdir(parents=True)
    shutil.copy(packed, tmp_path / "offline" / "resume" / "fq_inputs.tgz")
    calls.write_text("")
    second = _leversown(root, tmp_path / "out2", env)
    assert second.returncode == 0, second.stderr
    assert (root / "logs" / "fq" / "nerf_005000.pkl").read_text() == "weights\n"
    call = calls.read_text()
    assert "--expname fq --finetune_decoder_steps 0" in call and "--decoder_pth_path" not in call
    assert not (tmp_path / "out2" / "fq_inputs.tgz").exists()
    # the same archive kept in git instead
    shutil.rmtree(root / "logs")
    shutil.rmtree(tmp_path / "offline" / "resume")
    (root / "bench" / "checkpoints").mkdir()
    shutil.copy(packed, root / "bench" / "checkpoints" / "fq_inputs.tgz")
    assert _leversown(root, tmp_path / "out3", env).returncode == 0
    assert (root / "logs" / "fq" / "nerf_005000.pkl").read_text() == "weights\n"
