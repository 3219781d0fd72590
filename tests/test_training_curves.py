"""benchmarks/training_curves.py: per-epoch curves from an nnssl training log (hand-written log)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from training_curves import curves_table, main, parse_log  # noqa: E402

LOG = """\
2026-12-02 11:19:36.1: Using device cpu
2026-12-02 11:19:40.2: Epoch 0 
2026-12-02 11:19:40.3: Current learning rate: 0.01 
2026-12-02 11:20:10.4: ssl terms: frac_fg_labeled 0.0553, frac_fg_net_a 0.243, loss_cps 1.2e-05, ramp 0 
2026-12-02 11:20:10.5: Pseudo dice [np.float32(0.0), np.float32(0.0)] 
2026-12-02 11:20:15.6: Epoch 1 
2026-12-02 11:20:20.7: step 30: every network segments every labeled foreground class (Dice >= 0.2): the unsupervised ramp-up starts 
2026-12-02 11:20:45.8: ssl terms: frac_fg_labeled 0.0610, frac_fg_net_a 0, loss_cps 0.05245, ramp 0.0102 
2026-12-02 11:20:45.9: WARNING: possible background collapse 
2026-12-02 11:20:45.9: step 50: collapse guard: the unsupervised ramp-up restarts; ramp = 0 until every network segments every labeled foreground class (Dice >= 0.2) again 
2026-12-02 11:20:46.0: Pseudo dice [0.4997, nan] 
2026-12-02 11:20:50.1: Epoch 2 
"""


def test_parse_log_reads_terms_pseudo_dice_and_events():
    epochs, events = parse_log(LOG)
    assert [e["epoch"] for e in epochs] == [0, 1, 2]
    assert epochs[0]["frac_fg_net_a"] == pytest.approx(0.243)
    assert epochs[0]["loss_cps"] == pytest.approx(1.2e-05)
    assert epochs[1]["ramp"] == pytest.approx(0.0102)
    assert epochs[0]["pseudo_dice"] == [0.0, 0.0]
    assert epochs[1]["pseudo_dice"][0] == pytest.approx(0.4997)
    assert epochs[1]["pseudo_dice"][1] != epochs[1]["pseudo_dice"][1]  # nan kept as nan
    assert "ramp" not in epochs[2]  # the unfinished epoch has no terms yet
    assert len(events) == 3
    assert events[0].startswith("epoch 1: step 30:") and "WARNING" in events[1]
    assert events[2].startswith("epoch 1: step 50: collapse guard")


def test_curves_table_selects_epochs_and_leaves_missing_cells_empty():
    epochs, _ = parse_log(LOG)
    table = curves_table(epochs, ["frac_fg_net_a", "ramp"], select=[0, 2])
    assert table.splitlines() == [
        "| epoch | 0 | 2 |",
        "|---|---|---|",
        "| frac_fg_net_a | 0.243 |  |",
        "| ramp | 0 |  |",
        "| pseudo-Dice (per class) | 0.00 / 0.00 |  |",
    ]


def test_main_rejects_a_file_that_is_no_training_log(tmp_path, capsys):
    bad = tmp_path / "notes.txt"
    bad.write_text("nothing here\n")
    with pytest.raises(SystemExit):
        main([str(bad)])
    assert "notes.txt" in capsys.readouterr().err
