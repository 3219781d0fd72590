"""Self-training methods of the accuracy harness (``bench_accuracy.py``): nnssl_self_train within the
settings' budget, and the evaluation of each run's teacher (its round-0 model) as ``<method>_teacher``."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from accuracy_settings import self_training_methods, teacher_method


class SelfTrainingRuns:
    """The self-training part of ``bench_accuracy.Harness`` (a mixin: it uses the harness's settings ``s``,
    folders, ids, ``run``, ``method_plans``, ``_write_method_plans``, ``finished_summary`` and
    ``_predict_and_evaluate``)."""

    def evaluate_teacher(self, method: str, rep: int) -> Optional[Path]:
        """The teacher of a self-training run (its round-0 model, a supervised-only run of the teacher's budget)
        on the test cases, reported as method ``<method>_teacher``, so that what a round adds is measured
        on the same run. None when the run's nnssl_self_train state is not in this work folder (a run known
        only from the archive)."""
        name = teacher_method(method)
        finished = self.finished_summary(name, rep)
        state = self.self_train_state(method, rep)
        if finished is not None or not state.is_file():
            return finished
        model = json.loads(state.read_text())["rounds"]["0"]["model"]
        return self._predict_and_evaluate(name, rep, model["dataset"], model["plans"], model["trainer"],
                                          str(model["fold"]))

    def _self_train(self, method: str, rep: int, spec: Dict[str, Any], env: Dict[str, str]):
        """nnssl_self_train with the method's plans (``method_plans``, its copy written first) within the settings'
        budget (:func:`self_train_budget`); returns the final model's (dataset, plans, trainer)."""
        rounds = int(spec["self_train"]["rounds"])
        args = list(spec["self_train"].get("args", []))
        teacher, student = self_train_budget(int(self.s["hparams"]["num_epochs"]), rounds,
                                             spec["self_train"].get("teacher_fraction"), "--finetune" in args)
        hp = {**json.loads(env.get("nnssl_hparams", "{}")), **self.s["hparams"], "num_epochs": student}
        if teacher != student:
            args += ["--teacher_hparams", json.dumps({"num_epochs": teacher})]
        # rounds <= 4 per method
        base = self.ids["self_train"] + 20 * rep + 5 * self_training_methods(self.s).index(method)
        derived = [str(base + k) for k in range(1, rounds + 1)]
        plans = self._write_method_plans(method, rep)
        self.run(f"self_train_{method}_r{rep}", "nnssl_self_train", "-d", str(self.ids["ssl"]), "-c", self.cfg,
                 "-f", str(self.s["fold"]), "-p", plans, "-tr", spec["trainer"], "--rounds",
                 str(rounds), "--derived_ids", *derived, "-device", self.device, "-np", "1",
                 *args, env={"nnssl_hparams": json.dumps(hp)})
        final = json.loads(self.self_train_state(method, rep).read_text())["final"]  # its reported model
        return str(final["dataset"]), final["plans"], final["trainer"]

    def self_train_state(self, method: str, rep: int) -> Path:
        """The state.json of a self-training method's nnssl_self_train run (nnssl's own run-folder naming)."""
        from nnssl.self_training.run import Options, Paths, run_folder
        paths = Paths(*(self.folders[k] for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")))
        spec = self.s["methods"][method]
        opts = Options(dataset=self.dataset_name("ssl"), configuration=self.cfg, fold=str(self.s["fold"]),
                       rounds=int(spec["self_train"]["rounds"]), trainer=spec["trainer"],
                       plans=self.method_plans(method, rep))
        return run_folder(paths, self.dataset_name("ssl"), opts) / "state.json"


def self_train_budget(epochs: int, rounds: int, teacher_fraction: Optional[float] = None,
                      finetune: bool = False) -> Tuple[int, int]:
    """(teacher epochs, epochs of each later training) so that the teacher and the rounds' trainings (a student,
    plus its fine-tuning with ``--finetune``) add up to at most ``epochs``: the teacher gets
    ``round(teacher_fraction * epochs)`` and the rest is split evenly; without a fraction every training gets
    ``epochs // n_trainings``."""
    later = rounds * (2 if finetune else 1)
    if teacher_fraction is None:
        each = max(1, epochs // (later + 1))
        return each, each
    if not 0.0 < teacher_fraction < 1.0:
        raise ValueError(f"self_train teacher_fraction must be in (0, 1), got {teacher_fraction}")
    teacher = max(1, round(teacher_fraction * epochs))
    return teacher, max(1, (epochs - teacher) // later)
