"""Method A with one component switched off (the paper's ablation) or L_cr given another target, one class per row.

Each class is ``nnSSLDualTrainer`` (gate + guard) with one hyperparameter of METHODS.md A changed; nothing else
differs. nnU-Net names a results folder after the trainer class, hence one named class per ablation:

- ``_NoCR``:  no consistency regularisation L_cr inside L_sup (beta * L_cr dropped);
- ``_NoCCE``: no cross pseudo supervision + entropy-filtered supervision (CCE = L_cps + L_efs);
- ``_NoUE``:  no uncertainty-rectified peer supervision L_ue;
- ``_NoPGL``: no prototype-guided loss L_pgl (and no decoder-feature hooks);
- ``_LabelCR``: L_cr pulls each network towards one-hot(y) instead of its peer on the disagreement mask
  (``cr_target='label'``, the public code's variant): L_cr^k = sum_v M_v ||p_k,v - onehot(y_v)||^2 / sum_v M_v.

One class changes more: ``_LabeledOnly`` is ``_LabelCR`` with every unlabeled term off (use_cce, use_ue,
use_pgl = False), L = sum_k (L_sup^k + beta * L_cr^k): a supervised control that shows what ``_LabelCR``'s two
networks, their ensemble and L_cr give without unlabeled data.
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


class nnSSLDualTrainer_LabeledOnly(nnSSLDualTrainer_LabelCR):
    """Supervised control for ``_LabelCR``: its two networks and L_sup^k + beta * L_cr^k (towards the label),
    no unlabeled term. The unlabeled batch is still forwarded (the base logs its foreground shares); no loss
    reads it."""

    hparam_defaults: Mapping[str, Any] = {"use_cce": False, "use_ue": False, "use_pgl": False}
