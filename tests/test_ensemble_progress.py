import math

import numpy as np
import pytest
import torch

from nnssl_trainers.ensemble import SoftmaxEnsemble
from nnssl_trainers.progress import SSLLocalLogger


class Const(torch.nn.Module):
    """Returns fixed logits (or a deep-supervision list of them) whatever the input."""

    def __init__(self, logits, levels=1):
        super().__init__()
        self.logits, self.levels = logits, levels
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return [self.logits] * self.levels if self.levels > 1 else self.logits


def test_ensemble_averages_probabilities_and_returns_their_log():
    a = Const(torch.tensor([[[0.0], [math.log(3.0)]]]))  # p = (.25, .75)
    b = Const(torch.tensor([[[0.0], [0.0]]]))  # p = (.5, .5)
    ens = SoftmaxEnsemble({"a": a, "b": b})
    out = ens(torch.zeros(1))
    assert torch.allclose(torch.softmax(out, 1).squeeze(), torch.tensor([0.375, 0.625]))
    ens.set_member_weights([1.0, 0.0])
    assert torch.allclose(torch.exp(ens(torch.zeros(1))).squeeze(), torch.tensor([0.25, 0.75]))
    assert b.calls == 1  # a zero-weight member is not run
    with pytest.raises(ValueError):
        ens.set_member_weights([0.0, 0.0])


def test_ensemble_deep_supervision_and_state_dict_roundtrip():
    a = Const(torch.zeros(1, 2, 1), levels=3)
    ens = SoftmaxEnsemble({"a": a, "b": Const(torch.zeros(1, 2, 1), levels=3)}, weights=[0.0, 1.0])
    assert len(ens(torch.zeros(1))) == 3
    other = SoftmaxEnsemble({"a": a, "b": a})
    other.load_state_dict(ens.state_dict())
    assert other.member_weights.tolist() == [0.0, 1.0]


def test_ssl_logger_backfills_and_draws_extra_panel(tmp_path):
    logger = SSLLocalLogger()
    for epoch in range(3):
        for k, v in {"mean_fg_dice": 0.5, "ema_fg_dice": 0.5, "dice_per_class_or_region": [0.5], "train_losses": 1.0,
                     "val_losses": 1.0, "lrs": 0.01, "epoch_start_timestamps": epoch,
                     "epoch_end_timestamps": epoch + 1}.items():
            logger.log(k, v, epoch)
        logger.log("loss_cps", 0.1 * epoch, epoch)
        if epoch == 2:
            logger.log("frac_kept", 0.4, epoch)  # first seen at epoch 2
    assert np.isnan(logger.get_value("frac_kept", None)[:2]).all()
    assert logger.get_value("loss_cps", None) == [0.0, 0.1, 0.2]
    logger.plot_progress_png(str(tmp_path))
    import matplotlib.pyplot as plt
    height_with_panel = plt.imread(tmp_path / "progress.png").shape[0]
    plain = SSLLocalLogger()
    plain.my_fantastic_logging = {k: v for k, v in logger.my_fantastic_logging.items()
                                  if k in SSLLocalLogger.BASE_KEYS}
    plain.plot_progress_png(str(tmp_path))
    assert height_with_panel > plt.imread(tmp_path / "progress.png").shape[0]
