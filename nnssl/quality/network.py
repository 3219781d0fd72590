"""Quality predictor Q_phi(x, m) -> predicted Dice in [0, 1] (METHODS.md C).

A small ResNet-18-style encoder (2D or 3D): a stride-1 stem conv, four stages of two residual
BasicBlocks (the first one strided), instance norm + LeakyReLU as in nnU-Net, global average
pooling, a linear layer and a sigmoid. Input: image channels concatenated with the C soft-mask
channels, (B, C_img + C, *spatial). Output: (B, 1) mean foreground Dice, or (B, C-1) per class.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

StrideLike = Union[int, Sequence[int]]


class BasicBlock(nn.Module):
    """ResNet BasicBlock: y = act(norm(conv3(act(norm(conv3_s(x))))) + shortcut(x)).

    shortcut = identity, or norm(conv1x1_s(x)) when the stride or the channel count changes.
    """

    def __init__(self, dim: int, in_ch: int, out_ch: int, stride: Tuple[int, ...]):
        super().__init__()
        conv, norm = (nn.Conv2d, nn.InstanceNorm2d) if dim == 2 else (nn.Conv3d, nn.InstanceNorm3d)
        self.conv1 = conv(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.norm1 = norm(out_ch, eps=1e-5, affine=True)
        self.conv2 = conv(out_ch, out_ch, 3, stride=1, padding=1, bias=False)
        self.norm2 = norm(out_ch, eps=1e-5, affine=True)
        self.act = nn.LeakyReLU(0.01, inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if any(s != 1 for s in stride) or in_ch != out_ch:
            self.shortcut = nn.Sequential(conv(in_ch, out_ch, 1, stride=stride, bias=False),
                                          norm(out_ch, eps=1e-5, affine=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.norm1(self.conv1(x)))
        y = self.norm2(self.conv2(y))
        return self.act(y + self.shortcut(x))


def _as_stride(s: StrideLike, dim: int) -> Tuple[int, ...]:
    t = (int(s),) * dim if isinstance(s, int) else tuple(int(v) for v in s)
    if len(t) != dim or any(v < 1 for v in t):
        raise ValueError(f"stride {s!r} must be a positive int or {dim} positive ints")
    return t


class QualityPredictor(nn.Module):
    """Q(x, m) = sigmoid(W . GAP(encoder([x, m])) + b).

    Args:
        image_channels: C_img.
        num_classes: C (background included); the mask has C channels.
        dim: 2 or 3 spatial dimensions.
        strides: one stride per stage (int or ``dim`` ints); None -> 2 for each of the 4 stages. The
            total downsampling is their product, and the deepest map must keep > 1 voxel (instance
            norm in training mode).
        base_features: channels of the stem and stage 0; stage i has min(base * 2**i, max_features).
        max_features: channel cap.
        per_class: output (B, C-1) per-class Dice instead of (B, 1) mean foreground Dice.
        blocks: BasicBlocks per stage (ResNet-18: 2, 2, 2, 2); len(blocks) == len(strides).
    """

    def __init__(self, image_channels: int, num_classes: int, dim: int = 3,
                 strides: Optional[Sequence[StrideLike]] = None, base_features: int = 16,
                 max_features: int = 256, per_class: bool = False, blocks: Sequence[int] = (2, 2, 2, 2)):
        super().__init__()
        if dim not in (2, 3):
            raise ValueError(f"dim must be 2 or 3, got {dim}")
        if num_classes < 2 or image_channels < 1:
            raise ValueError(f"need image_channels >= 1 and num_classes >= 2, got {image_channels}, {num_classes}")
        strides = [2] * len(blocks) if strides is None else list(strides)
        if len(strides) != len(blocks):
            raise ValueError(f"{len(strides)} strides for {len(blocks)} stages")
        self.image_channels, self.num_classes, self.dim = int(image_channels), int(num_classes), int(dim)
        self.strides = [_as_stride(s, dim) for s in strides]
        self.base_features, self.max_features = int(base_features), int(max_features)
        self.per_class, self.blocks = bool(per_class), [int(b) for b in blocks]

        conv, norm = (nn.Conv2d, nn.InstanceNorm2d) if dim == 2 else (nn.Conv3d, nn.InstanceNorm3d)
        self.stem = nn.Sequential(conv(self.image_channels + self.num_classes, self.base_features, 3, padding=1,
                                       bias=False),
                                  norm(self.base_features, eps=1e-5, affine=True), nn.LeakyReLU(0.01, inplace=True))
        layers: List[nn.Module] = []
        in_ch = self.base_features
        for i, (stride, n_blocks) in enumerate(zip(self.strides, self.blocks)):
            out_ch = min(self.base_features * 2 ** i, self.max_features)
            for j in range(n_blocks):
                layers.append(BasicBlock(dim, in_ch, out_ch, stride if j == 0 else (1,) * dim))
                in_ch = out_ch
        self.encoder = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1) if dim == 2 else nn.AdaptiveAvgPool3d(1)
        self.head = nn.Linear(in_ch, self.num_classes - 1 if self.per_class else 1)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Conv3d)):
                nn.init.kaiming_normal_(m.weight, a=1e-2)

    def logits(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid output (B, 1) or (B, C-1); image (B, C_img, *sp), mask (B, C, *sp)."""
        if image.ndim != self.dim + 2 or image.shape[1] != self.image_channels:
            raise ValueError(f"image must be (B, {self.image_channels}, *{self.dim}D), got {tuple(image.shape)}")
        if mask.shape[1:2] != (self.num_classes,) or image.shape[0] != mask.shape[0] \
                or image.shape[2:] != mask.shape[2:]:
            raise ValueError(f"mask {tuple(mask.shape)} must be (B, {self.num_classes}, *spatial) like the "
                             f"image {tuple(image.shape)}")
        x = torch.cat([image, mask.to(image.dtype)], dim=1)
        return self.head(torch.flatten(self.pool(self.encoder(self.stem(x))), 1))

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Predicted Dice sigmoid(logits) in [0, 1]: (B, 1), or (B, C-1) with per_class.

        Differentiable in ``mask`` even when the predictor's parameters are frozen (QAR).
        """
        return torch.sigmoid(self.logits(image, mask))

    def config(self) -> Dict[str, Any]:
        """JSON-serialisable constructor arguments: ``QualityPredictor(**q.config())`` rebuilds it."""
        return {"image_channels": self.image_channels, "num_classes": self.num_classes, "dim": self.dim,
                "strides": [list(s) for s in self.strides], "base_features": self.base_features,
                "max_features": self.max_features, "per_class": self.per_class, "blocks": list(self.blocks)}

    @staticmethod
    def strides_from_plans(pool_op_kernel_sizes: Sequence[Sequence[int]], dim: int,
                           stages: int = 4) -> List[Tuple[int, ...]]:
        """The first ``stages`` non-trivial strides of nnU-Net's plans, padded with stride-1 stages.

        nnU-Net's list starts with an all-ones entry (its full-resolution stage does not pool); the
        following entries are the downsamplings it validated against the patch size (an axis is only
        halved while its feature map stays large enough, thick-slice axes later, e.g. [1, 2, 2]).
        Taking the first four of them gives our four stages the same anisotropy and a total
        downsampling that the patch size supports. Fewer than four (small patches) -> the rest are 1.
        """
        nontrivial = [_as_stride(s, dim) for s in pool_op_kernel_sizes if any(int(v) != 1 for v in s)]
        return (nontrivial + [(1,) * dim] * stages)[:stages]

    @classmethod
    def from_plans(cls, configuration_manager: Any, num_input_channels: int, num_classes: int,
                   per_class: bool = False, base_features: int = 16) -> "QualityPredictor":
        """Build from an nnU-Net ConfigurationManager (anything with ``patch_size`` and
        ``pool_op_kernel_sizes``): dim = len(patch_size), strides = ``strides_from_plans``.

        num_input_channels: image channels (the C mask channels are added); num_classes: C.
        """
        dim = len(configuration_manager.patch_size)
        strides = cls.strides_from_plans(configuration_manager.pool_op_kernel_sizes, dim)
        return cls(num_input_channels, num_classes, dim=dim, strides=strides, base_features=base_features,
                   per_class=per_class)
