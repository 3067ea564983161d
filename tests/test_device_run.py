"""bench/device_run.sh: every step its usage names has its case, and no case is unnamed."""
import os
import re

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
