"""evaluation/tables.py: the consistency ratios, style gain, the per-style summary and the files."""
import csv
import math

import pytest

from evaluation.tables import (ADAIN, ADAIN_3D, CARRIED, NERF, PHOTO, consistency_ratios, summary_markdown, summary_rows,
                               tap_lines, tap_rows, with_style_gain, write_report)


def _row(style, method, k1, k7):
    return {"style": style, "method": method, "k1_mean": k1, "k1_std": 0.0, "k7_mean": k7, "k7_std": 0.0}


def test_ratios_and_floor_corrected_ratios():
    table = [_row("(photoreal NeRF)", "NeRF render", 0.02, 0.03),
             _row("a.jpg", "stylized NeRF", 0.03, 0.04), _row("a.jpg", "per-frame AdaIN", 0.06, 0.08),
             _row("b.jpg", "stylized NeRF", 0.01, 0.02), _row("b.jpg", "per-frame AdaIN", 0.04, 0.05)]
    a, b = consistency_ratios(table, (1, 7))
    # a: 0.03/0.06 = 0.50, (0.03-0.02)/(0.06-0.02) = 0.25; 0.04/0.08 = 0.50, (0.01)/(0.05) = 0.20
    assert a == ("- a.jpg: stylized NeRF / per-frame AdaIN = 0.50 (above the floor: 0.25) at k=1, "
                 "0.50 (above the floor: 0.20) at k=7")
    # b lies below the floor at both k: its excess counts as 0
    assert b.startswith("- b.jpg: stylized NeRF / per-frame AdaIN = 0.25 (above the floor: 0.00) at k=1")


def test_ratios_without_a_floor_row_or_a_baseline():
    table = [_row("a.jpg", "stylized NeRF", 0.03, 0.04), _row("a.jpg", "per-frame AdaIN", 0.06, 0.08),
             _row("c.jpg", "stylized NeRF", 0.03, 0.04)]
    assert consistency_ratios(table, (1, 7)) == ["- a.jpg: stylized NeRF / per-frame AdaIN = 0.50 at k=1, 0.50 at k=7"]


@pytest.mark.parametrize("ks", [(1,), (7,)])
def test_ratios_for_one_offset(ks):
    table = [_row("a.jpg", "stylized NeRF", 0.03, 0.04), _row("a.jpg", "per-frame AdaIN", 0.06, 0.08)]
    (line,) = consistency_ratios(table, ks)
    assert line.count(" at k=") == 1


def _strength(style, method, loss, dist, sharp):
    return {"style": style, "method": method, "style_loss": loss, "content_distance": dist, "sharpness": sharp}


STRENGTH = [_strength("a.jpg", PHOTO, 4.0, 0.0, 1.0), _strength("a.jpg", NERF, 1.0, 2.5, 0.5),
            _strength("a.jpg", ADAIN, 2.0, 3.0, 1.25),
            _strength("b.png", PHOTO, 10.0, 0.0, 1.0), _strength("b.png", NERF, 8.0, 1.0, 0.75),
            _strength("b.png", ADAIN, 5.0, 2.0, 1.0)]
TABLE = [_row("(photoreal NeRF)", "NeRF render", 0.02, 0.03),
         _row("a.jpg", NERF, 0.03, 0.04), _row("a.jpg", ADAIN, 0.06, 0.08),
         _row("b.png", NERF, 0.01, 0.02), _row("b.png", ADAIN, 0.04, 0.05)]


def test_style_gain_is_relative_to_the_same_styles_photoreal_row():
    gains = {(r["style"], r["method"]): r["style_gain"] for r in with_style_gain(STRENGTH)}
    assert gains == {("a.jpg", PHOTO): 0.0, ("a.jpg", NERF): 0.75, ("a.jpg", ADAIN): 0.5,
                     ("b.png", PHOTO): 0.0, ("b.png", NERF): pytest.approx(0.2), ("b.png", ADAIN): 0.5}
    # without a photoreal row there is nothing to gain against
    assert math.isnan(with_style_gain([_strength("c.jpg", NERF, 1.0, 0.0, 1.0)])[0]["style_gain"])


def test_summary_rows_and_markdown():
    rows = summary_rows(STRENGTH, TABLE, (1, 7))
    assert [r["style"] for r in rows] == ["a", "b"]
    assert rows[0] == {"style": "a", "style_loss_ratio": 0.5, "style_gain_nerf": 0.75, "style_gain_adain": 0.5,
                       "content_distance_nerf": 2.5, "content_distance_adain": 3.0,
                       "sharpness_nerf": 0.5, "sharpness_adain": 1.25,
                       "consistency_ratio_k1": pytest.approx(0.5), "consistency_ratio_k7": pytest.approx(0.5)}
    assert rows[1]["consistency_ratio_k1"] == pytest.approx(0.25)
    lines = summary_markdown(rows, (1, 7))
    assert lines[0] == ("| style | style loss ratio | style gain | content distance | sharpness | "
                        "consistency ratio k=1 | consistency ratio k=7 |")
    assert lines[1] == "|---|---|---|---|---|---|---|"
    assert lines[2] == "| a | 0.50x | 0.75 / 0.50 | 2.5 / 3 | 0.50 / 1.25 | 0.50 | 0.50 |"
    assert lines[3] == "| b | 1.60x | 0.20 / 0.50 | 1 / 2 | 0.75 / 1.00 | 0.25 | 0.40 |"
    # a style without its consistency rows still gets its strength figures
    rows = summary_rows(STRENGTH, TABLE[:3], (1,))
    assert math.isnan(rows[1]["consistency_ratio_k1"]) and rows[1]["style_gain_nerf"] == pytest.approx(0.2)


def test_the_3d_tuned_decoders_adain_is_a_second_reference_beside_the_2d_one():
    # per-frame AdaIN with the decoder fine-tuned in 3D: weaker in style (loss 4 against the 2D
    # decoder's 2), more consistent (0.04 against 0.06); the ratios stay against the 2D decoder's
    strength = STRENGTH[:3] + [_strength("a.jpg", ADAIN_3D, 4.0, 1.0, 1.0)]
    table = TABLE[:3] + [_row("a.jpg", ADAIN_3D, 0.04, 0.05)]
    (row,) = summary_rows(strength, table, (1, 7))
    assert row["style_loss_ratio"] == 0.5 and row["style_loss_ratio_3d"] == 0.25
    assert row["consistency_ratio_k1"] == pytest.approx(0.5)  # 0.03 / 0.06, not 0.03 / 0.04
    lines = summary_markdown([row], (1, 7))
    assert lines[0].startswith("| style | style loss ratio | style gain | content distance | sharpness | "
                               "style loss ratio to the 3D-tuned decoder's AdaIN | consistency ratio k=1")
    assert lines[2].startswith("| a | 0.50x | 0.75 / 0.50 | 2.5 / 3 | 0.50 / 1.25 | 0.25 | 0.50 |")
    assert consistency_ratios(table, (1, 7))[-1] == (f"- a.jpg: stylized NeRF / {ADAIN_3D} = 0.75 at k=1, "
                                                      "0.80 at k=7")


def test_write_report_files(tmp_path):
    photo = [{"view": 0, "psnr": 20.0, "ssim": 0.5}]
    write_report(str(tmp_path), 30, photo, TABLE, (1, 7), 12, (47, 63), STRENGTH,
                 {"a.jpg": "strip_a.png", "b.png": "strip_b.png"}, 32)
    report = (tmp_path / "report.md").read_text()
    assert "## Style strength (12 path frames at 63x47; style images at 32 px on the short side)" in report
    assert "| a.jpg | stylized NeRF | 1 | 0.750 | 2.5 | 0.500 |" in report
    assert "![a.jpg](strip_a.png)" in report and "![b.png](strip_b.png)" in report
    assert "| a | 0.50x | 0.75 / 0.50 | 2.5 / 3 | 0.50 / 1.25 | 0.50 | 0.50 |" in report
    with open(tmp_path / "style_strength.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and float(rows[1]["style_gain"]) == 0.75
    with open(tmp_path / "summary.csv") as f:
        summary = list(csv.DictReader(f))
    assert [r["style"] for r in summary] == ["a", "b"]
    assert float(summary[1]["consistency_ratio_k7"]) == pytest.approx(0.4)
    assert (tmp_path / "photoreal.csv").exists() and (tmp_path / "consistency.csv").exists()
    # no stylized NeRF: the photoreal and consistency parts only
    (tmp_path / "none").mkdir()
    write_report(str(tmp_path / "none"), 30, photo, TABLE[:1], (1, 7), 12, (47, 63))
    assert "Style strength" not in (tmp_path / "none" / "report.md").read_text()


def test_style_loss_by_tap_table_and_csv(tmp_path):
    taps = {PHOTO: {"relu1_1": (1.0, 2.0, 1.5), "relu2_1": (3.0, 4.0, 1.25)},
            NERF: {"relu1_1": (0.5, 1.5, 0.5), "relu2_1": (0.25, 0.75, 0.75)},
            ADAIN: {"relu1_1": (0.25, 0.75, 0.875), "relu2_1": (0.5, 0.5, 1.0)}}
    strength = [dict(r, taps=taps[r["method"]]) for r in STRENGTH[:3]]
    rows = tap_rows(strength)
    assert len(rows) == 6 and rows[2] == {"style": "a.jpg", "method": NERF, "tap": "relu1_1",
                                           "means_term": 0.5, "stds_term": 1.5, "std_level": 0.5}
    lines = tap_lines(strength)
    assert "| a.jpg | relu1_1 | 1 / 2 (1.50) | 0.5 / 1.5 (0.50) | 0.25 / 0.75 (0.88) | 2.00x |" in lines
    assert "| a.jpg | relu2_1 | 3 / 4 (1.25) | 0.25 / 0.75 (0.75) | 0.5 / 0.5 (1.00) | 1.00x |" in lines
    assert tap_lines(STRENGTH) == []  # rows without "taps": no section
    write_report(str(tmp_path), 30, [], TABLE, (1, 7), 12, (47, 63), strength, None, 32)
    assert "## Style loss by encoder tap" in (tmp_path / "report.md").read_text()
    with open(tmp_path / "style_loss_by_tap.csv") as f:
        got = list(csv.DictReader(f))
    assert len(got) == 6 and got[5]["tap"] == "relu2_1" and float(got[5]["stds_term"]) == 0.5


def test_backward_warp_table_adds_its_own_section_csv_and_summary_columns(tmp_path):
    backward = [dict(r, k1_mean=r["k1_mean"] / 2, k7_mean=r["k7_mean"] / 4 if r["method"] == NERF else r["k7_mean"])
                for r in TABLE]
    rows = summary_rows(STRENGTH, TABLE, (1, 7), backward)
    # a: k7 0.04 / 4 against 0.08; the forward ratios stay as they were
    assert rows[0]["consistency_ratio_k7_backward"] == pytest.approx(0.125)
    assert rows[0]["consistency_ratio_k1_backward"] == pytest.approx(0.5)
    assert rows[0]["consistency_ratio_k7"] == pytest.approx(0.5)
    lines = summary_markdown(rows, (1, 7))
    assert lines[0].endswith("| consistency ratio k=7 | k=1, backward warp | k=7, backward warp |")
    assert lines[1] == "|---" * 9 + "|"
    assert lines[2] == "| a | 0.50x | 0.75 / 0.50 | 2.5 / 3 | 0.50 / 1.25 | 0.50 | 0.50 | 0.50 | 0.12 |"
    write_report(str(tmp_path), 30, [], TABLE, (1, 7), 12, (47, 63), STRENGTH, None, 32, table_backward=backward)
    report = (tmp_path / "report.md").read_text()
    assert "## Consistency, forward splat (12 path frames" in report
    assert "## Consistency, backward bilinear warp (12 path frames" in report
    with open(tmp_path / "consistency_backward.csv") as f:
        assert float(list(csv.DictReader(f))[1]["k7_mean"]) == pytest.approx(0.01)
    with open(tmp_path / "summary.csv") as f:
        assert float(list(csv.DictReader(f))[0]["consistency_ratio_k7_backward"]) == pytest.approx(0.125)


def test_carried_adain_rows_give_their_own_ratio_line_and_summary_columns(tmp_path):
    # a's AdaIN carried in 3D: 0.036 / 0.06 = 0.60 at k=1, 0.044 / 0.08 = 0.55 at k=7
    table = TABLE + [_row("a.jpg", CARRIED, 0.036, 0.044)]
    lines = consistency_ratios(table, (1, 7))
    assert lines[1] == (f"- a.jpg: {CARRIED} / per-frame AdaIN = 0.60 at k=1, 0.55 at k=7 (a flicker-free "
                        "stylization with AdaIN's texture: about the lowest ratio such a one reaches)")
    assert len(lines) == 3 and lines[2].startswith("- b.png: stylized NeRF")  # b has no carried row
    rows = summary_rows(STRENGTH, table, (1, 7))
    assert rows[0]["carried_ratio_k1"] == pytest.approx(0.6) and rows[0]["carried_ratio_k7"] == pytest.approx(0.55)
    assert math.isnan(rows[1]["carried_ratio_k7"])
    md = summary_markdown(rows, (1, 7))
    assert md[0].endswith("| consistency ratio k=7 | k=7, AdaIN carried in 3D |")
    assert md[2] == "| a | 0.50x | 0.75 / 0.50 | 2.5 / 3 | 0.50 / 1.25 | 0.50 | 0.50 | 0.55 |"
    write_report(str(tmp_path), 30, [], table, (1, 7), 12, (47, 63), STRENGTH, None, 32)
    with open(tmp_path / "summary.csv") as f:
        assert float(list(csv.DictReader(f))[0]["carried_ratio_k7"]) == pytest.approx(0.55)
