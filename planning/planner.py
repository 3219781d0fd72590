"""SSL-aware experiment planner: nnU-Net's planning with a memory budget for SSL training."""
from __future__ import annotations

from typing import Tuple

from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import ExperimentPlanner
from nnunetv2.experiment_planning.experiment_planners.residual_unets.residual_encoder_unet_planners import \
    nnUNetPlannerResEncM

DEFAULT_PLANS_NAME = "nnSSLPlans"


class _SSLMemoryBudget:
    """Scales nnU-Net's VRAM estimate of one network on one labeled patch to an SSL step.

    estimate_ssl = estimate * num_networks * (1 + unlabeled_batch_ratio)

    Every trained network stores activations for the labeled and the unlabeled patches of a batch,
    so patch and (labeled) batch size are chosen as nnU-Net would for a budget that is
    ``num_networks * (1 + unlabeled_batch_ratio)`` times smaller. Defaults budget two networks and
    one unlabeled patch per labeled patch (CPS, the dual-network trainers); a Mean Teacher run,
    whose teacher stores no activations, could plan with ``num_networks=1``.
    """

    ssl_num_networks: int = 2
    ssl_unlabeled_batch_ratio: float = 1.0

    @property
    def ssl_memory_factor(self) -> float:
        return self.ssl_num_networks * (1.0 + self.ssl_unlabeled_batch_ratio)

    def static_estimate_VRAM_usage(self, patch_size: Tuple[int, ...], input_channels: int, output_channels: int,
                                   arch_class_name: str, arch_kwargs: dict, arch_kwargs_req_import: Tuple[str, ...]):
        # nnU-Net's own estimate calls torch.set_num_threads(nnUNet_n_proc_DA), which fails for
        # nnUNet_n_proc_DA=0 (the setting for CPU runs); the estimate itself is the same.
        net = get_network_from_plans(arch_class_name, arch_kwargs, arch_kwargs_req_import, input_channels,
                                     output_channels, allow_init=False)
        return net.compute_conv_feature_map_size(patch_size) * self.ssl_memory_factor

    def save_plans(self, plans: dict):
        plans["nnssl_planner"] = {
            "planner": type(self).__name__,
            "num_networks": self.ssl_num_networks,
            "unlabeled_batch_ratio": self.ssl_unlabeled_batch_ratio,
            "memory_factor": self.ssl_memory_factor,
            "note": "batch_size is the labeled batch per step; unlabeled batch = unlabeled_batch_ratio * batch_size",
        }
        super().save_plans(plans)


class nnSSLPlanner(_SSLMemoryBudget, ExperimentPlanner):
    """nnU-Net's default planner (PlainConvUNet) with the SSL memory budget; plans named nnSSLPlans."""

    default_plans_name = DEFAULT_PLANS_NAME

    def __init__(self, dataset_name_or_id, gpu_memory_target_in_gb: float = 8,
                 preprocessor_name: str = "DefaultPreprocessor", plans_name: str = DEFAULT_PLANS_NAME,
                 overwrite_target_spacing=None, suppress_transpose: bool = False):
        super().__init__(dataset_name_or_id, gpu_memory_target_in_gb, preprocessor_name, plans_name,
                         overwrite_target_spacing, suppress_transpose)


class nnSSLPlannerResEncM(_SSLMemoryBudget, nnUNetPlannerResEncM):
    """nnU-Net's ResEnc-M planner with the SSL memory budget; plans named nnSSLResEncMPlans."""

    default_plans_name = "nnSSLResEncMPlans"

    def __init__(self, dataset_name_or_id, gpu_memory_target_in_gb: float = 8,
                 preprocessor_name: str = "DefaultPreprocessor", plans_name: str = "nnSSLResEncMPlans",
                 overwrite_target_spacing=None, suppress_transpose: bool = False):
        super().__init__(dataset_name_or_id, gpu_memory_target_in_gb, preprocessor_name, plans_name,
                         overwrite_target_spacing, suppress_transpose)


PLANNERS = {"nnSSLPlanner": nnSSLPlanner, "nnSSLPlannerResEncM": nnSSLPlannerResEncM}
