"""The accuracy report's maths (benchmarks/accuracy_report.py): gap closed, averaging, paired comparisons."""
from __future__ import annotations

import json
import math

import pytest

from bench_fixtures import _summary
import accuracy_report as report  # noqa: E402  (benchmarks/ is on sys.path through bench_fixtures)


def test_gap_closed_by_hand():
    assert report.gap_closed(0.80, 0.70, 0.90) == pytest.approx(0.5)
    assert report.gap_closed(0.65, 0.70, 0.90) == pytest.approx(-0.25)
    assert math.isnan(report.gap_closed(0.8, 0.9, 0.9))


def _rows_from(tmp_path, runs_by_method: dict) -> list:
    """Report rows (trainer T_<method>) of {method: {rep: {case: {label: dice}}}}."""
    files = {}
    for method, runs in runs_by_method.items():
        files[method] = {}
        for rep, run in runs.items():
            path = tmp_path / f"{method}_r{rep}.json"
            path.write_text(json.dumps(_summary(run)))
            files[method][rep] = path
    return report.collect_rows(files, {"methods": {m: {"trainer": f"T_{m}"} for m in files}})


def _both_classes(dice_by_case: dict) -> dict:
    """{case: dice} -> {case: {1: dice, 2: dice}}."""
    return {c: {1: d, 2: d} for c, d in dice_by_case.items()}


def test_rows_average_classes_then_repetitions(tmp_path):
    rows = {r["method"]: r for r in _rows_from(tmp_path, {
        "supervised": {0: {"a": {1: 0.6, 2: 0.8}, "b": {1: 0.5, 2: 0.5}}},
        "full": {0: {"a": {1: 0.9, 2: 0.9}, "b": {1: 0.8, 2: 0.8}}},
        "cps": {0: {"a": {1: 0.8, 2: 0.8}, "b": {1: 0.6, 2: 0.6}},
                1: {"a": {1: 0.7, 2: 0.9}, "b": {1: 0.6, 2: 0.8}}}})}
    # supervised: case a = (0.6 + 0.8) / 2 = 0.7, case b = 0.5 -> mean 0.6, std 0.1
    assert rows["supervised"]["values"]["dice"] == pytest.approx([0.7, 0.5])
    assert rows["supervised"]["stats"]["dice"]["mean"] == pytest.approx(0.6)
    assert rows["supervised"]["stats"]["dice"]["std"] == pytest.approx(0.1)
    # cps: case a = mean(0.8, 0.8) = 0.8 averaged with run 2's 0.8 -> 0.8; case b = (0.6 + 0.7) / 2 = 0.65
    assert rows["cps"]["values"]["dice"] == pytest.approx([0.8, 0.65])
    assert rows["cps"]["run_dice"] == pytest.approx([0.7, 0.75])
    # full mean 0.85: gap closed (0.725 - 0.6) / (0.85 - 0.6) = 0.5; both cases improved
    assert rows["cps"]["gap_closed"] == pytest.approx(0.5)
    assert rows["cps"]["improved_cases"] == 1.0
    assert all(v is None or math.isnan(v) for v in rows["cps"]["values"]["asd_mm"])  # undefined stays NaN
    assert rows["cps"]["values"]["hd95_mm"] == pytest.approx([1.5, 1.5])
    table = report.markdown_table(list(rows.values()))
    assert "| cps | `T_cps` | 72.50 ± 7.50 |" in table and "| 50% | 100% |" in table
    # cps's runs (0.70, 0.75) both above supervised's one run (0.60): 100% of the run pairs
    assert rows["cps"]["runs_above"] == 1.0 and table.splitlines()[-1].endswith("| 100% (p 0.67) |")
    assert "| 1.50 ± 0.00 | n/a |" in table  # HD95 defined (1.5 mm), ASD undefined on every case




def test_pairs_compare_methods_and_single_runs_by_hand(tmp_path):
    rows = _rows_from(tmp_path, {
        "supervised": {0: _both_classes({"a": 0.5, "b": 0.6, "c": 0.7}),
                       2: _both_classes({"a": 0.7, "b": 0.8, "c": 0.9})},  # run 1 missing
        "cps": {0: _both_classes({"a": 0.8, "b": 0.5, "c": 0.9})}})
    sup = next(r for r in rows if r["method"] == "supervised")
    assert sup["runs"] == [0, 2] and sup["run_dice"] == pytest.approx([0.6, 0.8])
    pairs = report.paired_rows(rows, [("cps", "supervised"), ("cps", "supervised:r2"), ("supervised:r0", "cps:r0")])
    # cps (0.8, 0.5, 0.9) vs the per-case mean of the two supervised runs (0.6, 0.7, 0.8): a and c better
    assert pairs[0]["dice_a"] == pytest.approx(2.2 / 3) and pairs[0]["dice_b"] == pytest.approx(0.7)
    assert pairs[0]["difference"] == pytest.approx(0.1 / 3) and pairs[0]["improved_cases"] == pytest.approx(2 / 3)
    # against run 2 alone (0.7, 0.8, 0.9): better on a only, equal on c
    assert pairs[1]["dice_b"] == pytest.approx(0.8) and pairs[1]["improved_cases"] == pytest.approx(1 / 3)
    assert pairs[2]["difference"] == pytest.approx(-0.4 / 3) and pairs[2]["improved_cases"] == pytest.approx(1 / 3)
    from scipy.stats import wilcoxon
    assert pairs[1]["wilcoxon_p"] == pytest.approx(wilcoxon([0.8, 0.5, 0.9], [0.7, 0.8, 0.9]).pvalue)
    # run against run: cps's one run (mean 0.733) above supervised's 0.6, below its 0.8 -> 1 of 2 pairs
    assert pairs[0]["runs_above"] == pytest.approx(0.5) and pairs[1]["runs_above"] == 0.0
    assert pairs[1]["runs_p"] == 1.0  # one run each: nothing to order
    table = report.pairs_table(pairs)
    assert "| cps | supervised:r2 | 73.33 | 80.00 | -6.67 | 33% |" in table
    assert table.splitlines()[2].endswith("| 50% | 1 |")


def test_run_level_by_hand():
    # a = (0.80, 0.82, 0.70), b = (0.75, 0.80): pairs a > b: 0.80>0.75, 0.82>0.75, 0.82>0.80 -> 3,
    # tie 0.80 = 0.80 -> 0.5, so U = 3.5 of 6
    got = report.run_level([0.80, 0.82, 0.70], [0.75, 0.80])
    assert got["runs_above"] == pytest.approx(3.5 / 6)
    from scipy.stats import mannwhitneyu
    assert got["runs_p"] == pytest.approx(mannwhitneyu([0.80, 0.82, 0.70], [0.75, 0.80]).pvalue)
    # every run of A above every run of B: U / (n_A n_B) = 1 and the exact two-sided p = 2 / C(7, 3) = 2 / 35
    got = report.run_level([0.9, 0.91, 0.92], [0.5, 0.6, 0.7, 0.8])
    assert got["runs_above"] == 1.0 and got["runs_p"] == pytest.approx(2 / 35)
    assert report.run_level([0.7, 0.7], [0.7]) == {"runs_above": 0.5, "runs_p": 1.0}


@pytest.mark.parametrize("spec,message", [("mean_teacher", "no finished run of method 'mean_teacher'"),
                                          ("supervised:r1", r"supervised has runs \['r0', 'r2'\]"),
                                          ("supervised:best", "supervised has runs")])
def test_pairs_name_what_exists_when_a_run_is_missing(tmp_path, spec, message):
    rows = _rows_from(tmp_path, {"supervised": {0: _both_classes({"a": 0.5}), 2: _both_classes({"a": 0.7})},
                                 "cps": {0: _both_classes({"a": 0.8})}})
    with pytest.raises(ValueError, match=message):
        report.paired_rows(rows, [("cps", spec)])
