"""evaluation/report.py: the ratio lines of the consistency report."""
import pytest

from evaluation.report import consistency_ratios


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
