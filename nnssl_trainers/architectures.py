"""Networks built from nnU-Net plans: the plans' own U-Net and a heterogeneous partner for it."""
from __future__ import annotations

import copy
from typing import Tuple

from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
from torch import nn

PLAIN = "dynamic_network_architectures.architectures.unet.PlainConvUNet"
RESENC = "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"
#: residual blocks per encoder stage of nnU-Net's ResEnc-M planner (truncated to the plans' stages)
RESENC_BLOCKS = (1, 3, 4, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6)


def partner_architecture(class_name: str, arch_kwargs: dict) -> Tuple[str, dict]:
    """The other U-Net family with the same stages, features, kernels and strides.

    PlainConvUNet <-> ResidualEncoderUNet: a plain encoder pairs with a residual one (nnU-Net ResEnc-M
    block counts), so the two subnets of a dual-network trainer have different inductive biases
    but identical resolutions at every stage (their outputs and deep supervision align).
    """
    kwargs = copy.deepcopy(arch_kwargs)
    n = kwargs["n_stages"]
    if class_name.endswith("PlainConvUNet"):
        kwargs.pop("n_conv_per_stage")
        kwargs["n_blocks_per_stage"] = list(RESENC_BLOCKS[:n])
        return RESENC, kwargs
    if class_name.endswith("ResidualEncoderUNet"):
        kwargs.pop("n_blocks_per_stage")
        kwargs["n_conv_per_stage"] = [2] * n
        return PLAIN, kwargs
    raise ValueError(f"no heterogeneous partner known for architecture {class_name}")


def build_partner_network(configuration_manager, num_input_channels: int, num_output_channels: int,
                          deep_supervision: bool) -> nn.Module:
    """The partner (see ``partner_architecture``) of the plans' network, built like nnU-Net builds its own."""
    name, kwargs = partner_architecture(configuration_manager.network_arch_class_name,
                                        configuration_manager.network_arch_init_kwargs)
    return get_network_from_plans(name, kwargs, configuration_manager.network_arch_init_kwargs_req_import,
                                  num_input_channels, num_output_channels, allow_init=True,
                                  deep_supervision=deep_supervision)


class DecoderFeatures:
    """Captures the last decoder feature map (the input of the final segmentation layer) of a U-Net.

    Registers a forward hook on ``decoder.seg_layers[-1]`` of the plain module (so DDP/compile
    wrappers are irrelevant); ``features`` holds (B, F, *spatial) of the latest forward.
    """

    def __init__(self, unet: nn.Module):
        self.features = None
        self._handle = unet.decoder.seg_layers[-1].register_forward_hook(self._capture)

    def _capture(self, module, inputs, output) -> None:
        self.features = inputs[0]

    def pop(self):
        """Return the captured features and forget them (no stale map is reused by mistake)."""
        if self.features is None:
            raise RuntimeError("no decoder features captured: run a forward pass of the network first")
        f, self.features = self.features, None
        return f

    def remove(self) -> None:
        self._handle.remove()
