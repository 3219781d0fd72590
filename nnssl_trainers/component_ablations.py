"""Method A with one component switched off (the paper's ablation), one class per row, and its supervised control.

Each class is ``nnSSLDualTrainer`` (gate + guard, L_cr towards the label) with one hyperparameter of METHODS.md
A changed; nothing else differs. nnU-Net names a results folder after the trainer class, hence one named class
per ablation (a benchmark variant that only sets hyperparameters needs none: bench_accuracy writes a method's
``hparams`` into a plans copy of its own):

- ``_NoCR``:  no consistency regularisation L_cr inside L_sup (beta * L_cr dropped);
- ``_NoCCE``: no cross pseudo supervision + entropy-filtered supervision (CCE = L_cps + L_efs);
- ``_NoUE``:  no uncertainty-rectified peer supervision L_ue;
- ``_NoPGL``: no prototype-guided loss L_pgl (and no decoder-feature hooks).

One class changes more: ``_LabeledOnly`` has every unlabeled term off (use_cce, use_ue, use_pgl = False),
L = sum_k (L_sup^k + beta * L_cr^k): a supervised control that shows what method A's two networks, their
ensemble and L_cr towards the label give without unlabeled data.
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


class nnSSLDualTrainer_LabeledOnly(nnSSLDualTrainer):
    """Supervised control for method A: its two networks and L_sup^k + beta * L_cr^k (towards the label),
    no unlabeled term. The unlabeled batch is still forwarded (the base logs its foreground shares); no loss
    reads it."""

    hparam_defaults: Mapping[str, Any] = {"use_cce": False, "use_ue": False, "use_pgl": False}
