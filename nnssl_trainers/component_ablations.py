"""Method A with one unsupervised component switched off: the paper's ablation, one class per row.

Each class is ``nnSSLDualTrainer`` (gate + guard) with one switch of METHODS.md A set to False; nothing else
differs. nnU-Net names a results folder after the trainer class, hence one named class per ablation:

- ``_NoCR``:  no consistency regularisation L_cr inside L_sup (beta * L_cr dropped);
- ``_NoCCE``: no cross pseudo supervision + entropy-filtered supervision (CCE = L_cps + L_efs);
- ``_NoUE``:  no uncertainty-rectified peer supervision L_ue;
- ``_NoPGL``: no prototype-guided loss L_pgl (and no decoder-feature hooks).
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
