"""Deep supervision: nnU-Net's networks and targets are lists over scales when it is on."""
from __future__ import annotations

from typing import Sequence, TypeVar, Union

T = TypeVar("T")


def full_resolution(output: Union[T, Sequence[T]]) -> T:
    """The full-resolution entry (index 0) of a deep-supervision list or tuple, else ``output`` itself.

    Works for network outputs ([(B, C, *patch), (B, C, *patch / 2), ...]) and nnU-Net targets alike.
    """
    return output[0] if isinstance(output, (list, tuple)) else output
