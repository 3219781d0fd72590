"""Labeled-case share of a training dataset that mixes labeled and pseudo-labeled cases.

nnU-Net's training loader draws each patch's case uniformly from ``dataset.identifiers``. A self-training
student's dataset holds L labeled and P pseudo-labeled cases (P >> L in the usual setting), so the labeled
cases, the only reliable targets, get L / (L + P) of the draws. Repeating identifiers in that list reweights
the draws without touching nnU-Net's loader: with every labeled case listed ``a`` times and every
pseudo-labeled case ``b`` times, a draw is labeled with probability

    share = a * L / (a * L + b * P),

so ``a / b = s * P / ((1 - s) * L)`` gives the requested share ``s`` (exactly when that ratio is a fraction
with a small denominator, else to within :data:`MAX_REPEAT`'s resolution).
"""
from __future__ import annotations

from fractions import Fraction
from typing import Collection, List, Sequence

#: largest number of times one identifier is listed (bounds the list's length and the share's rounding)
MAX_REPEAT = 100


def check_share(share: object, what: str = "labeled_share") -> float:
    """``share`` as a float in the open interval (0, 1); ValueError naming ``what`` otherwise."""
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share < 1:
        raise ValueError(f"{what} must be a number between 0 and 1 (exclusive), got {share!r}")
    return float(share)


def labeled_share(identifiers: Sequence[str], pseudo_labeled: Collection[str]) -> float:
    """Share of the entries of ``identifiers`` (repeats counted) that are not in ``pseudo_labeled``."""
    pseudo = set(pseudo_labeled)
    return sum(i not in pseudo for i in identifiers) / len(identifiers) if identifiers else 0.0


def weighted_identifiers(identifiers: Sequence[str], pseudo_labeled: Collection[str], share: float) -> List[str]:
    """``identifiers`` with repeats such that a uniform draw from the list is a labeled case (one not in
    ``pseudo_labeled``) with probability ``share`` (see the module docstring).

    Each labeled case is listed ``a`` times and each pseudo-labeled case ``b`` times, in the input order, with
    ``a / b`` the closest fraction to ``s * P / ((1 - s) * L)`` whose terms are at most :data:`MAX_REPEAT`.
    The list is returned unchanged when it holds no labeled or no pseudo-labeled case (nothing to reweight).
    """
    share = check_share(share)
    pseudo = set(pseudo_labeled)
    n_pseudo = sum(i in pseudo for i in identifiers)
    n_labeled = len(identifiers) - n_pseudo
    if n_pseudo == 0 or n_labeled == 0:
        return list(identifiers)
    ratio = Fraction(share / (1 - share)) * Fraction(n_pseudo, n_labeled)
    a, b = _bounded_fraction(ratio, MAX_REPEAT)
    return [i for i in identifiers for _ in range(b if i in pseudo else a)]


def _bounded_fraction(ratio: Fraction, limit: int) -> tuple[int, int]:
    """(a, b), 1 <= a, b <= limit, with a / b the closest such fraction to ``ratio`` (> 0), clamped to
    [1 / limit, limit]."""
    if ratio >= limit:
        return limit, 1
    if ratio <= Fraction(1, limit):
        return 1, limit
    if ratio >= 1:
        inverse = (1 / ratio).limit_denominator(limit)
        return inverse.denominator, inverse.numerator
    approx = ratio.limit_denominator(limit)
    return approx.numerator, approx.denominator
