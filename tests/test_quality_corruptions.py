"""Quality-guidance training masks (METHODS.md C): Dice targets, synthetic corruptions, sampler."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from nnssl.quality import (
    CORRUPTIONS, class_swap, mean_foreground_dice, one_hot, random_corruption, soft_dice_per_class, soften,
)

NUM_CLASSES = 3
DECREASING = [k for k in CORRUPTIONS if k not in ("empty", "full")]


def label_3d() -> np.ndarray:
    """(24, 32, 32) uint8: two touching ellipsoids, classes 1 and 2."""
    z, y, x = np.ogrid[:24, :32, :32]
    lab = np.zeros((24, 32, 32), dtype=np.uint8)
    lab[((z - 12) / 8.0) ** 2 + ((y - 16) / 7.0) ** 2 + ((x - 11) / 6.0) ** 2 <= 1] = 1
    lab[((z - 12) / 6.0) ** 2 + ((y - 16) / 6.0) ** 2 + ((x - 22) / 5.0) ** 2 <= 1] = 2
    return lab


def label_2d() -> np.ndarray:
    """(48, 48) int64: two touching ellipses, classes 1 and 2."""
    y, x = np.ogrid[:48, :48]
    lab = np.zeros((48, 48), dtype=np.int64)
    lab[((y - 24) / 12.0) ** 2 + ((x - 18) / 8.0) ** 2 <= 1] = 1
    lab[((y - 24) / 9.0) ** 2 + ((x - 32) / 7.0) ** 2 <= 1] = 2
    return lab


LABELS = {"3d": label_3d, "2d": label_2d}


def dice(pred: np.ndarray, ref: np.ndarray, num_classes: int = NUM_CLASSES) -> float:
    """Mean foreground Dice of a hard (*sp) or soft (C, *sp) mask to ``ref``."""
    soft = pred if pred.ndim == ref.ndim + 1 else one_hot(pred, num_classes)
    return float(mean_foreground_dice(torch.from_numpy(soft)[None], torch.from_numpy(ref.astype(np.int64))[None]))


# ---------------------------------------------------------------- Dice targets
def test_soft_dice_hand_values():
    target = torch.tensor([[[0, 1, 1, 2]]])  # (B=1, 1, 4)
    hard = one_hot(np.array([[0, 1, 0, 2]]), 3)
    d = soft_dice_per_class(torch.from_numpy(hard)[None], target)
    assert torch.allclose(d, torch.tensor([[2 / 3, 1.0]]))
    soft = torch.zeros(1, 3, 1, 4)
    soft[0, 0] = 0.5
    soft[0, 1] = torch.tensor([0.5, 0.5, 0.5, 0.0])
    soft[0, 2] = torch.tensor([0.0, 0.0, 0.0, 0.5])
    # class 1: 2 * (0.5 + 0.5) / (1.5 + 2); class 2: 2 * 0.5 / (0.5 + 1)
    assert torch.allclose(soft_dice_per_class(soft, target), torch.tensor([[2 / 3.5, 2 / 3]]))
    assert torch.allclose(mean_foreground_dice(soft, target), torch.tensor([(2 / 3.5 + 2 / 3) / 2]))


def test_soft_dice_empty_cases_and_gradient():
    bg = torch.zeros(2, 3, 5, 5)
    bg[:, 0] = 1.0
    target = torch.zeros(2, 5, 5, dtype=torch.long)
    target[1, 2, 2] = 2  # sample 1: class 2 missed by the mask
    d = soft_dice_per_class(bg, target)
    assert d.tolist() == [[1.0, 1.0], [1.0, 0.0]]  # both empty -> 1, one empty -> 0
    logits = torch.randn(2, 3, 5, 5, requires_grad=True)
    mean_foreground_dice(torch.softmax(logits, 1), target).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        soft_dice_per_class(bg, target[:, :4])


# ---------------------------------------------------------------- corruption contract
@pytest.mark.parametrize("dim", ["3d", "2d"])
@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_corruption_contract(name, dim):
    lab = LABELS[dim]()
    f = CORRUPTIONS[name]
    assert np.array_equal(f(lab, 0.0, np.random.default_rng(0), NUM_CLASSES), lab)  # identity
    for strength in (0.3, 1.0):
        out = f(lab, strength, np.random.default_rng(7), NUM_CLASSES)
        assert out.shape == lab.shape and out.dtype == lab.dtype
        assert out.min() >= 0 and out.max() < NUM_CLASSES
        again = f(lab, strength, np.random.default_rng(7), NUM_CLASSES)
        assert np.array_equal(out, again)  # seeded determinism
    assert np.array_equal(lab, LABELS[dim]())  # input untouched


@pytest.mark.parametrize("dim", ["3d", "2d"])
@pytest.mark.parametrize("name", DECREASING)
def test_dice_falls_with_strength(name, dim):
    lab = LABELS[dim]()

    def mean_dice(strength: float) -> float:
        return float(np.mean([dice(CORRUPTIONS[name](lab, strength, np.random.default_rng(s), NUM_CLASSES), lab)
                              for s in range(4)]))

    weak, strong = mean_dice(0.2), mean_dice(0.8)
    assert strong < weak <= 1.0, (name, weak, strong)


@pytest.mark.parametrize("dim", ["3d", "2d"])
def test_empty_full_and_class_swap(dim):
    lab = LABELS[dim]()
    rng = np.random.default_rng(0)
    assert dice(CORRUPTIONS["empty"](lab, 0.5, rng, NUM_CLASSES), lab) == 0.0
    full = CORRUPTIONS["full"](lab, 0.5, rng, NUM_CLASSES)
    assert (full > 0).all() and np.array_equal(full[lab > 0], lab[lab > 0])
    assert dice(full, lab) < 0.5
    swapped = class_swap(lab, 1.0, rng, NUM_CLASSES)  # strength 1: classes 1 and 2 fully exchanged
    assert np.array_equal(swapped, np.where(lab == 1, 2, np.where(lab == 2, 1, lab)).astype(lab.dtype))
    binary = (lab > 0).astype(lab.dtype)
    assert np.array_equal(class_swap(binary, 1.0, rng, 2), binary)


def test_corruption_input_errors():
    lab = label_2d()
    with pytest.raises(ValueError):
        CORRUPTIONS["erosion"](lab, 1.5, np.random.default_rng(0), NUM_CLASSES)
    with pytest.raises(ValueError):
        CORRUPTIONS["erosion"](lab.astype(np.float32), 0.5, np.random.default_rng(0), NUM_CLASSES)
    with pytest.raises(ValueError):
        CORRUPTIONS["erosion"](lab, 0.5, np.random.default_rng(0), 2)  # value 2 >= C


# ---------------------------------------------------------------- soft masks and the sampler
@pytest.mark.parametrize("dim", ["3d", "2d"])
def test_soften(dim):
    lab = LABELS[dim]()
    hard = soften(lab, 0.0, np.random.default_rng(0), NUM_CLASSES)
    assert hard.dtype == np.float32 and hard.shape == (NUM_CLASSES, *lab.shape)
    assert np.array_equal(hard, one_hot(lab, NUM_CLASSES))
    for strength in (0.1, 1.0):
        soft = soften(lab, strength, np.random.default_rng(0), NUM_CLASSES)
        assert soft.dtype == np.float32 and soft.shape == (NUM_CLASSES, *lab.shape)
        assert np.allclose(soft.sum(0), 1.0, atol=1e-5) and soft.min() >= 0.0
    assert np.array_equal(soften(lab, 0.1, None, NUM_CLASSES).argmax(0), lab)  # small sigma keeps argmax
    blurred = soften(lab, 1.0, None, NUM_CLASSES)
    assert ((blurred > 0.05) & (blurred < 0.95)).any()
    assert dice(blurred, lab) < 1.0


@pytest.mark.parametrize("dim", ["3d", "2d"])
def test_random_corruption_records_ops(dim):
    lab = LABELS[dim]()
    rng = np.random.default_rng(3)
    seen = set()
    for _ in range(12):
        soft, info = random_corruption(lab, rng, NUM_CLASSES)
        assert soft.dtype == np.float32 and soft.shape == (NUM_CLASSES, *lab.shape)
        assert np.allclose(soft.sum(0), 1.0, atol=1e-5)
        assert info["source"] == "synthetic"
        names = [n for n, _ in info["ops"]]
        assert names[-1] == "soften" and 2 <= len(names) <= 3
        assert all(n in CORRUPTIONS for n in names[:-1]) and all(0.0 <= s <= 1.0 for _, s in info["ops"])
        seen.update(names[:-1])
    assert len(seen) >= 4
    a = random_corruption(lab, np.random.default_rng(11), NUM_CLASSES)
    b = random_corruption(lab, np.random.default_rng(11), NUM_CLASSES)
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]


def test_random_corruption_rates():
    lab = label_2d()
    soft, info = random_corruption(lab, np.random.default_rng(0), NUM_CLASSES, rates={"empty": 1.0, "full": 0.0})
    assert [n for n, _ in info["ops"]] == ["empty", "soften"] and (soft.argmax(0) == 0).all()
    only = {k: 0.0 for k in CORRUPTIONS}
    _, info = random_corruption(lab, np.random.default_rng(0), NUM_CLASSES, rates={**only, "holes": 1.0})
    assert [n for n, _ in info["ops"]] == ["holes", "soften"]
    binary = (lab > 0).astype(lab.dtype)
    with pytest.raises(ValueError):  # class_swap is never drawn for binary tasks
        random_corruption(binary, np.random.default_rng(0), 2, rates={**only, "class_swap": 1.0})
    with pytest.raises(ValueError):
        random_corruption(lab, np.random.default_rng(0), NUM_CLASSES, rates={"blur": 1.0})
    with pytest.raises(ValueError):  # empty / full rates are probabilities
        random_corruption(lab, np.random.default_rng(0), NUM_CLASSES, rates={"empty": 0.7, "full": 0.7})
