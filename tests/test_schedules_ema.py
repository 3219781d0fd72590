import math

import pytest
import torch

from nnssl.ema import ema_update
from nnssl.schedules import linear_rampup, sigmoid_rampup


@pytest.mark.parametrize("t, expected", [(0, math.exp(-5)), (5, math.exp(-5 * 0.25)), (10, 1.0), (25, 1.0),
                                         (-3, math.exp(-5))])
def test_sigmoid_rampup(t, expected):
    assert sigmoid_rampup(t, 10) == pytest.approx(expected)


def test_rampups_disabled_and_linear():
    assert sigmoid_rampup(0, 0) == 1.0
    assert linear_rampup(3, 12) == pytest.approx(0.25)
    assert linear_rampup(30, 12) == 1.0
    assert linear_rampup(0, 0) == 1.0


def test_ema_update_hand_value():
    teacher, student = torch.nn.Linear(1, 1), torch.nn.Linear(1, 1)
    with torch.no_grad():
        teacher.weight.fill_(1.0), teacher.bias.fill_(0.0)
        student.weight.fill_(3.0), student.bias.fill_(-2.0)
    ema_update(teacher, student, decay=0.9)
    assert teacher.weight.item() == pytest.approx(0.9 * 1 + 0.1 * 3)
    assert teacher.bias.item() == pytest.approx(0.1 * -2)
    assert student.weight.item() == 3.0
    with pytest.raises(ValueError):
        ema_update(teacher, student, decay=1.5)
