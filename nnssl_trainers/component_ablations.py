"""Method A with one component switched off (the paper's ablation) or L_cr given another target, one class per row.

Each class is ``nnSSLDualTrainer`` (gate + guard) with one hyperparameter of METHODS.md A changed; nothing else
differs. nnU-Net names a results folder after the trainer class, hence one named class per ablation:

- ``_NoCR``:  no consistency regularisation L_cr inside L_sup (beta * L_cr dropped);
- ``_NoCCE``: no cross pseudo supervision + entropy-filtered supervision (CCE = L_cps + L_efs);
- ``_NoUE``:  no uncertainty-rectified peer supervision L_ue;
- ``_NoPGL``: no prototype-guided loss L_pgl (and no decoder-feature hooks);
- ``_LabelCR``: L_cr pulls each network towards one-hot(y) instead of its peer on the disagreement mask
  (``cr_target='label'``, the public code's variant): L_cr^k = sum_v M_v ||p_k,v - onehot(y_v)||^2 / sum_v M_v.
"""
from typing import Any, Mapping

from nnssl_trainers.dual import nnSSLDualTrainer


class nnSSLDualTrainer_NoCR(nnSSLDualTrainer):
    """Method A without L_cr on the labeled batch."""

    hparam_defaults: Mapping[str, Any] = {"use_cr": False}


class nnSSLDualTrainer_NoCCE(nnSSLDualTrainer):
    """Method A without cross pseudo supervision and entropy-filtered supervision (CCE)."""

    hparam_defaults: Mapping[str, Any] = {"use_cce": False}


class nnSSLDualTrainer_NoUE(nnSSLDualTrainer):
    """Method A without the uncertainty-rectified peer supervision L_ue."""

    hparam_defaults: Mapping[str, Any] = {"use_ue": False}


class nnSSLDualTrainer_NoPGL(nnSSLDualTrainer):
    """Method A without the prototype-guided loss L_pgl."""

    hparam_defaults: Mapping[str, Any] = {"use_pgl": False}


class nnSSLDualTrainer_LabelCR(nnSSLDualTrainer):
    """Method A with L_cr towards the label on the labeled disagreement voxels, not towards the peer."""

    hparam_defaults: Mapping[str, Any] = {"cr_target": "label"}
