"""Unwrapping networks from DDP and torch.compile, and outputs/targets from deep supervision lists."""
from __future__ import annotations

from torch import nn
from torch._dynamo import OptimizedModule
from torch.nn.parallel import DistributedDataParallel as DDP


def unwrap(module: nn.Module) -> nn.Module:
    """The plain module under DDP and torch.compile wrappers."""
    if isinstance(module, DDP):
        module = module.module
    if isinstance(module, OptimizedModule):
        module = module._orig_mod
    return module


def full_resolution(output):
    """The full-resolution entry of a deep-supervision list (network outputs or nnU-Net targets), else itself."""
    return output[0] if isinstance(output, (list, tuple)) else output
