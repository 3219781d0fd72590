"""Unwrapping networks from DDP and torch.compile."""
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

