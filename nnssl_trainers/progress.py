"""Logging of the extra (SSL) values per epoch, drawn as an extra panel of progress.png."""
from __future__ import annotations

import math
import os
from typing import Any, List

import matplotlib

matplotlib.use("agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from nnunetv2.training.logging.nnunet_logger import LocalLogger  # noqa: E402

#: keys with this prefix are shares in [0, 1] and are drawn on the right-hand axis
SHARE_PREFIX = "frac_"


class SSLLocalLogger(LocalLogger):
    """nnU-Net's LocalLogger that also accepts SSL keys (registered on first use).

    A key first logged at epoch e > 0 is back-filled with NaN for epochs 0..e-1, so every series
    keeps one value per epoch (nnU-Net's plot uses the shortest series to count epochs).
    """

    BASE_KEYS = ("mean_fg_dice", "ema_fg_dice", "dice_per_class_or_region", "train_losses", "val_losses",
                 "lrs", "epoch_start_timestamps", "epoch_end_timestamps")

    def log(self, key: str, value: Any, epoch: int):
        if key not in self.my_fantastic_logging:
            self.my_fantastic_logging[key] = [math.nan] * epoch
        super().log(key, value, epoch)

    def ssl_keys(self) -> List[str]:
        return [k for k in self.my_fantastic_logging if k not in self.BASE_KEYS]

    def plot_progress_png(self, output_folder: str):
        super().plot_progress_png(output_folder)
        keys = self.ssl_keys()
        if not keys:
            return
        epoch = min(len(v) for v in self.my_fantastic_logging.values())
        x = np.arange(epoch)
        fig, ax = plt.subplots(1, 1, figsize=(30, 18))
        ax2 = ax.twinx()
        for k in keys:
            target = ax2 if k.startswith(SHARE_PREFIX) else ax
            target.plot(x, np.asarray(self.my_fantastic_logging[k][:epoch], dtype=float), label=k, linewidth=4,
                        ls="--" if target is ax2 else "-")
        ax.set_xlabel("epoch")
        ax.set_ylabel("SSL loss terms / weights")
        ax2.set_ylabel("shares of voxels / samples")
        ax.legend(loc=(0, 1))
        if any(k.startswith(SHARE_PREFIX) for k in keys):
            ax2.legend(loc=(0.5, 1))
        fig.tight_layout()
        path = os.path.join(output_folder, "progress.png")
        panel_path = os.path.join(output_folder, ".progress_ssl.png")
        fig.savefig(panel_path)
        plt.close(fig)
        _stack_images_vertically(path, panel_path)
        os.remove(panel_path)


def _stack_images_vertically(top_path: str, bottom_path: str) -> None:
    """Append image ``bottom_path`` below ``top_path`` (in place), padding the narrower one in white."""
    top, bottom = plt.imread(top_path), plt.imread(bottom_path)
    channels = min(top.shape[2], bottom.shape[2])
    top, bottom = top[..., :channels], bottom[..., :channels]
    width = max(top.shape[1], bottom.shape[1])

    def pad(img: np.ndarray) -> np.ndarray:
        out = np.ones((img.shape[0], width, channels), dtype=img.dtype)
        out[:, : img.shape[1]] = img
        return out

    plt.imsave(top_path, np.concatenate([pad(top), pad(bottom)], axis=0))
