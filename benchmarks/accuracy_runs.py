"""Where the accuracy harness's runs lie and which are finished: each run's evaluation summary and trainer
hyperparameter record, in the work folder and in the archive (``bench_accuracy.py --archive``)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from accuracy_hparams import TRAINER_RECORD, check_run_hparams, record_path
from accuracy_settings import archive_summary, method_dataset


class FinishedRuns:
    """The run-files part of ``bench_accuracy.Harness`` (a mixin: it uses the harness's settings ``s``, ``work``,
    ``archive``, ``folders``, ``cfg``, ``dataset_name`` and ``method_plans``)."""

    def summary_path(self, method: str, rep: int) -> Path:
        """Where a finished run's nnssl_evaluate summary lies (written last, so it marks the run as done)."""
        return self.work / "predictions" / f"{method}_r{rep}" / "nnssl_summary.json"

    def finished_summary(self, method: str, rep: int) -> Optional[Path]:
        """The summary of a finished run: the work folder's (archived on the way, with its trainer's hyperparameter
        record), else the archive's, else None. A run whose record disagrees with what its method resolves now is
        refused (``accuracy_hparams.check_run_hparams``)."""
        local = self.summary_path(method, rep)
        stored = self.archive / f"{method}_r{rep}.json" if self.archive is not None else None
        trained = self.trained_record(method, rep)
        if local.is_file():
            if stored is not None:
                archive_summary(local, stored)
                if trained is not None and trained.is_file():
                    archive_summary(trained, record_path(stored))
            found = local
        elif stored is not None and stored.is_file():
            found = stored
        else:
            return None
        record = next((r for r in (trained, stored and record_path(stored)) if r and r.is_file()), None)
        if record is not None:  # the work folder's training, else the archived record
            check_run_hparams(self.s, method, rep, record)
        return found

    def results_folder(self, method: str, rep: int) -> Path:
        """The fold folder nnUNetv2_train writes a (not self-training) method's run into."""
        spec = self.s["methods"][method]
        return (self.folders["nnUNet_results"] / self.dataset_name(method_dataset(spec))
                / f"{spec['trainer']}__{self.method_plans(method, rep)}__{self.cfg}" / f"fold_{self.s['fold']}")

    def trained_record(self, method: str, rep: int) -> Optional[Path]:
        """The hyperparameter record the run's trainer writes (``nnssl_hparams.json``, nnssl trainers only); None
        for a self-training method or its teacher (several trainings)."""
        spec = self.s["methods"].get(method)
        if spec is None or "self_train" in spec:
            return None
        return self.results_folder(method, rep) / TRAINER_RECORD
