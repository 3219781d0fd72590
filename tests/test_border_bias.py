"""benchmarks/border_bias.py: distance to the patch border, band sums and the table (hand-computed values)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from border_bias import band_sums, band_table, border_distance, main  # noqa: E402


def test_border_distance_by_hand():
    d = border_distance((4, 6))
    rows = torch.tensor([0, 1, 1, 0]) / 4  # min(x, 3 - x) / 4
    cols = torch.tensor([0, 1, 2, 2, 1, 0]) / 6  # min(x, 5 - x) / 6
    assert torch.allclose(d, torch.minimum(rows[:, None], cols[None, :]))
    assert float(d[1, 2]) == pytest.approx(0.25) and float(d[1, 1]) == pytest.approx(1 / 6)
    assert border_distance((3, 3, 3))[1, 1, 1] == pytest.approx(1 / 3)


def test_band_sums_and_table_by_hand():
    band = torch.tensor([[0, 0, 1], [1, 2, 2]])
    ref = torch.tensor([[1, 1, 1], [0, 1, 1]], dtype=torch.bool)
    argmax = torch.tensor([[0, 1, 1], [1, 1, 0]], dtype=torch.bool)
    soft = torch.tensor([[0.2, 0.6, 0.9], [0.7, 0.8, 0.4]])
    sums = band_sums(band, 3, ref=ref, argmax=argmax, softmax=soft, dynamic=argmax)
    assert sums["ref"].tolist() == [2, 1, 2] and sums["argmax"].tolist() == [1, 2, 1]
    assert np.allclose(sums["softmax"], [0.8, 1.6, 1.2])
    table = band_table(sums, edges=(0.1, 0.2)).splitlines()
    assert table[2] == "| < 0.1 | 0.400 | 0.50 | 0.40 | 0.50 |"  # ref 2 of 5; 1/2, 0.8/2
    assert table[3] == "| 0.1-0.2 | 0.200 | 2.00 | 1.60 | 2.00 |"
    assert table[4] == "| >= 0.2 | 0.400 | 0.50 | 0.60 | 0.50 |"
    assert table[5] == "| all | 1.000 | 0.80 | 0.72 | 0.80 |"  # 4/5, 3.6/5
    empty = band_table({k: np.zeros(3) for k in sums}, edges=(0.1, 0.2))
    assert empty.splitlines()[-1] == "| all | n/a | n/a | n/a | n/a |"


def test_refuses_a_folder_without_a_trained_fold(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main([str(tmp_path), str(tmp_path)])
    assert "not a trained fold folder" in capsys.readouterr().err
