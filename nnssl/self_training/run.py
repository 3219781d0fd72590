"""The self-training loop: nnU-Net's CLIs as subprocesses, one recorded step at a time (see ``nnssl.self_training``)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from nnssl.cli.discovery import with_ext_trainer_path
from nnssl.data.raw import get_unlabeled_cases, load_dataset_json
from nnssl.data.sampling import check_share
from nnssl.hparams import ENV_VAR as HPARAMS_ENV, load_env_overrides
from nnssl.self_training import derived, state as st
from nnssl.self_training.pseudo_labels import check_threshold, make_pseudo_labels

#: testing hook: "ROUND:STEP" stops the run (exit code 75) right after that step was recorded
STOP_ENV = "nnssl_self_train_stop_after"
RUN_PREFIX = "nnSSLSelfTrain"
CHECKPOINTS = ("checkpoint_final.pth", "checkpoint_latest.pth", "checkpoint_best.pth")
#: how a student starts from its teacher: every layer (nnssl hyperparameter init_weights, nnssl trainers), or
#: nnU-Net's -pretrained_weights (segmentation layers re-initialised, any trainer)
WARM_STARTS = ("all", "pretrained_weights")


class Interrupted(RuntimeError):
    """Raised by the ``nnssl_self_train_stop_after`` hook."""


@dataclass
class Options:
    """What ``nnssl_self_train`` was asked to do (the CLI's arguments)."""
    dataset: str
    configuration: str
    rounds: int
    fold: str = "0"
    trainer: str = "nnUNetTrainer"
    plans: str = "nnUNetPlans"
    case_threshold: Optional[float] = None
    voxel_threshold: Optional[float] = None
    finetune: bool = False
    warm_start: Optional[str] = None  # None, "all" or "pretrained_weights" (WARM_STARTS)
    teacher_hparams: Optional[Dict[str, Any]] = None
    labeled_share: Optional[float] = None
    derived_ids: Optional[List[int]] = None
    device: Optional[str] = None
    num_gpus: Optional[int] = None
    num_processes: int = 3
    extra_env: Dict[str, str] = field(default_factory=dict)


@dataclass
class Paths:
    """nnU-Net's three folders (from the environment at call time)."""
    raw: Path
    pre: Path
    res: Path

    @classmethod
    def from_env(cls) -> "Paths":
        missing = [k for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results") if not os.environ.get(k)]
        if missing:
            raise ValueError(f"environment variable(s) {', '.join(missing)} not set (nnU-Net's folders)")
        return cls(*(Path(os.environ[k]) for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")))

    @property
    def all(self) -> List[Path]:
        return [self.raw, self.pre, self.res]


def model_folder(paths: Paths, model: dict) -> Path:
    """nnU-Net's results folder of a model spec {dataset, trainer, plans, configuration, fold}."""
    return (paths.res / model["dataset"] / f"{model['trainer']}__{model['plans']}__{model['configuration']}"
            / f"fold_{model['fold']}")


def run_folder(paths: Paths, base: str, opts: Options) -> Path:
    """``$nnUNet_results/<base>/nnSSLSelfTrain__<trainer>__<plans>__<config>/fold_<F>``."""
    return paths.res / base / f"{RUN_PREFIX}__{opts.trainer}__{opts.plans}__{opts.configuration}" / f"fold_{opts.fold}"


def teacher_plans(plans: str) -> str:
    """Plans copy of round 0 (so the teacher's results folder names its round)."""
    return f"{plans}_SelfTrainR0"


def finetune_plans(plans: str, k: int) -> str:
    """Plans copy of round ``k``'s fine-tuning on the labeled cases."""
    return f"{plans}_SelfTrainR{k}FineTune"


def predict_command(model: dict) -> str:
    """The nnUNetv2_predict call that uses ``model``."""
    return (f"nnUNetv2_predict -i INPUT -o OUTPUT -d {model['dataset']} -tr {model['trainer']} -p {model['plans']} "
            f"-c {model['configuration']} -f {model['fold']}")


def train_command(model: dict, folder: Path, opts: Options, pretrained: Optional[Path] = None) -> List[str]:
    """nnUNetv2_train for ``model``: continued with ``--c`` if ``folder`` holds a checkpoint, else fresh (with
    ``-pretrained_weights`` if given: nnU-Net refuses both together)."""
    cmd = ["nnUNetv2_train", model["dataset"], model["configuration"], str(model["fold"]), "-tr", model["trainer"],
           "-p", model["plans"]]
    if any((folder / c).is_file() for c in CHECKPOINTS):
        cmd.append("--c")
    elif pretrained is not None:
        cmd += ["-pretrained_weights", str(pretrained)]
    return cmd + _device_args(opts)


def _device_args(opts: Options) -> List[str]:
    out = ["-device", opts.device] if opts.device else []
    return out + (["-num_gpus", str(opts.num_gpus)] if opts.num_gpus else [])


def hparams_env(opts: Options, extra: Dict[str, Any], environ: Dict[str, str] = os.environ) -> Dict[str, str]:
    """``{"nnssl_hparams": ...}``: ``extra`` merged over ``$nnssl_hparams`` (of ``opts.extra_env`` or ``environ``)."""
    current = opts.extra_env.get(HPARAMS_ENV, environ.get(HPARAMS_ENV, ""))
    return {HPARAMS_ENV: json.dumps({**load_env_overrides({HPARAMS_ENV: current}), **extra})}


def teacher_env(opts: Options) -> Dict[str, str]:
    """Extra environment of the teacher's training: ``--teacher_hparams`` merged over ``$nnssl_hparams``."""
    return hparams_env(opts, opts.teacher_hparams) if opts.teacher_hparams else {}


def student_start(opts: Options, teacher_checkpoint: Path) -> tuple[Optional[Path], Dict[str, str]]:
    """(-pretrained_weights, extra environment) of a student's training under ``--warm_start`` and
    ``--labeled_share`` (nnssl hyperparameters init_weights and labeled_share)."""
    extra: Dict[str, Any] = {} if opts.labeled_share is None else {"labeled_share": opts.labeled_share}
    if opts.warm_start == "all":
        extra["init_weights"] = str(teacher_checkpoint)
    pretrained = teacher_checkpoint if opts.warm_start == "pretrained_weights" else None
    return pretrained, hparams_env(opts, extra) if extra else {}


def _call(cmd: Sequence[str], opts: Options, env_update: Optional[Dict[str, str]] = None) -> None:
    env = {**os.environ, **opts.extra_env, **(env_update or {}),
           "nnUNet_extTrainer": with_ext_trainer_path(os.environ.get("nnUNet_extTrainer"))}
    print(f"[nnssl_self_train]   $ {' '.join(cmd)}", flush=True)
    sys.stderr.flush()
    rc = subprocess.call(list(cmd), env=env)
    if rc != 0:
        raise RuntimeError(f"{cmd[0]} exited with code {rc}: {' '.join(cmd)}")


def _train(paths: Paths, model: dict, opts: Options, pretrained: Optional[Path] = None,
           env_update: Optional[Dict[str, str]] = None) -> Path:
    folder = model_folder(paths, model)
    _call(train_command(model, folder, opts, pretrained), opts, env_update)
    if not (folder / "checkpoint_final.pth").is_file():
        raise RuntimeError(f"nnUNetv2_train finished without {folder / 'checkpoint_final.pth'}")
    return folder


def _fresh(folder: Path) -> Path:
    """Remove a half-written output folder of this run (its step is not recorded as done) and recreate it."""
    if folder.exists():
        print(f"[nnssl_self_train]   removing unfinished {folder}", flush=True)
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def _save_json(obj: object, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")


def _settings(opts: Options, base: str) -> dict:
    return {"dataset": base, "configuration": opts.configuration, "fold": opts.fold, "trainer": opts.trainer,
            "plans": opts.plans, "case_threshold": opts.case_threshold, "voxel_threshold": opts.voxel_threshold,
            "finetune": opts.finetune, "warm_start": opts.warm_start, "teacher_hparams": opts.teacher_hparams,
            "labeled_share": opts.labeled_share}


def _check_stop(k: int, step: str) -> None:
    if os.environ.get(STOP_ENV) == f"{k}:{step}":
        raise Interrupted(f"stopped after round {k} step {step} (${STOP_ENV})")


def _derived_id(state: dict, k: int, base: str, base_id: int, opts: Options, paths: Paths) -> int:
    """The derived dataset id of round ``k``: recorded, given (--derived_ids) or the next free one (recorded
    before anything is created, so a resumed run finds its own folders)."""
    given = opts.derived_ids[k - 1] if opts.derived_ids and len(opts.derived_ids) >= k else None
    recorded = state["derived_ids"].get(str(k))
    if recorded is not None:
        if given is not None and given != recorded:
            raise ValueError(f"round {k} already uses derived dataset id {recorded}, not {given} (--derived_ids)")
        derived.check_free_id(recorded, derived.derived_name(recorded, base, k), paths.all)
        return recorded
    if given is not None:
        if derived.datasets_by_id(paths.all).get(given):
            raise ValueError(f"derived dataset id {given} is already used by "
                             f"{sorted(derived.datasets_by_id(paths.all)[given])}; pass free ids with --derived_ids")
        return given
    taken = [int(v) for v in state["derived_ids"].values()]
    return derived.choose_free_id(max([base_id] + taken), paths.all, taken=taken)


def validate(opts: Options, paths: Paths) -> tuple[str, Path]:
    """Check the request before anything runs; returns (base dataset name, base raw folder)."""
    if opts.rounds < 1:
        raise ValueError(f"--rounds must be >= 1, got {opts.rounds}")
    check_threshold("--case_threshold", opts.case_threshold)
    check_threshold("--voxel_threshold", opts.voxel_threshold)
    if opts.warm_start not in (None, *WARM_STARTS):
        raise ValueError(f"--warm_start must be one of {list(WARM_STARTS)}, got {opts.warm_start!r}")
    if opts.labeled_share is not None:
        check_share(opts.labeled_share, "--labeled_share")
    if opts.teacher_hparams is not None and not isinstance(opts.teacher_hparams, dict):
        raise ValueError(f"--teacher_hparams must be a JSON object, got {opts.teacher_hparams!r}")
    if opts.derived_ids and len(set(opts.derived_ids)) != len(opts.derived_ids):
        raise ValueError(f"--derived_ids must be distinct, got {opts.derived_ids}")
    base = derived.resolve_dataset(opts.dataset, paths.all)
    raw = paths.raw / base
    dataset_json = load_dataset_json(raw)
    if opts.voxel_threshold is not None and any(not isinstance(v, int) for v in dataset_json["labels"].values()):
        raise ValueError(f"{raw / 'dataset.json'} declares region labels: --voxel_threshold (ignore label) needs "
                         f"plain integer labels")
    if not get_unlabeled_cases(raw, dataset_json):
        raise ValueError(f"no unlabeled images in {raw / 'imagesUnlabeled'}: nothing to pseudo-label")
    plans_file = paths.pre / base / f"{opts.plans}.json"
    if not plans_file.is_file():
        raise FileNotFoundError(f"plans {plans_file} not found: plan and preprocess {base} first")
    return base, raw


def run_self_training(opts: Options, paths: Optional[Paths] = None) -> dict:
    """Run (or resume) the self-training rounds 0..opts.rounds; returns the final model spec (also in state.json)."""
    paths = paths or Paths.from_env()
    base, raw = validate(opts, paths)
    base_json = load_dataset_json(raw)
    ignore_label = derived.with_ignore_label(base_json["labels"])[1] if opts.voxel_threshold is not None else None
    folder = run_folder(paths, base, opts)
    state_file = folder / st.STATE_FILE
    state = st.load_state(state_file)
    if state is None:
        state = st.new_state(_settings(opts, base))
    else:
        st.check_settings(state, _settings(opts, base), state_file)
    for k in range(1, opts.rounds + 1):  # clashes of given ids are refused before anything runs
        if opts.derived_ids and len(opts.derived_ids) >= k:
            _derived_id(state, k, base, 0, opts, paths)
    st.save_state(state, state_file)
    todo = st.pending_steps(state, opts.rounds, opts.finetune)
    print(f"[nnssl_self_train] {base}, {opts.trainer}/{opts.plans}/{opts.configuration} fold {opts.fold}, "
          f"{opts.rounds} round(s); state {state_file}; " +
          (f"resuming at round {todo[0][0]} step {todo[0][1]}" if todo and state["rounds"] else
           "nothing left to do" if not todo else "starting"), flush=True)
    for k, step in todo:
        round_dir = folder / f"round_{k}"
        print(f"[nnssl_self_train] round {k}/{opts.rounds}: {step}", flush=True)
        info = _run_step(k, step, opts, paths, base, raw, base_json, ignore_label, state, state_file, round_dir)
        st.mark_done(state, k, step, **info)
        if "model" in info:
            state["final"] = {"round": k, **info["model"], "predict": predict_command(info["model"])}
        st.save_state(state, state_file)
        _check_stop(k, step)
    final = {"round": opts.rounds, **state["rounds"][str(opts.rounds)]["model"]}
    final["predict"] = predict_command(final)
    print(f"[nnssl_self_train] final model (round {opts.rounds}): dataset {final['dataset']}, trainer "
          f"{final['trainer']}, plans {final['plans']}, configuration {final['configuration']}, fold {final['fold']}"
          f"\n[nnssl_self_train] use it with: {final['predict']}", flush=True)
    return final


def _run_step(k: int, step: str, opts: Options, paths: Paths, base: str, raw: Path, base_json: dict,
              ignore_label: Optional[int], state: dict, state_file: Path, round_dir: Path) -> dict:
    """Do one step; returns what to record in the round's state entry."""
    model = {"trainer": opts.trainer, "configuration": opts.configuration, "fold": opts.fold}
    if k == 0:  # the teacher: labeled cases of the base dataset, plans copy named after round 0
        plans = teacher_plans(opts.plans)
        derived.copy_plans(paths.pre / base, opts.plans, plans)
        if not (round_dir / "settings.json").is_file():
            _save_json({"round": 0, **_settings(opts, base), "teacher_plans": plans}, round_dir / "settings.json")
        model.update(dataset=base, plans=plans)
        _train(paths, model, opts, env_update=teacher_env(opts))
        return {"model": model}
    teacher = state["rounds"][str(k - 1)]["model"]
    new_id = _derived_id(state, k, base, int(base[7:10]), opts, paths)
    if str(k) not in state["derived_ids"]:  # recorded before any folder of it is created
        state["derived_ids"][str(k)] = new_id
        st.save_state(state, state_file)
    name = derived.derived_name(new_id, base, k)
    if not (round_dir / "settings.json").is_file():
        _save_json({"round": k, **_settings(opts, base), "teacher": teacher, "derived_dataset": name,
                    "ignore_label": ignore_label}, round_dir / "settings.json")
    if step == "predict":
        out = _fresh(round_dir / "predictions")
        _call(["nnUNetv2_predict", "-i", str(raw / "imagesUnlabeled"), "-o", str(out), "-d", teacher["dataset"],
               "-tr", teacher["trainer"], "-p", teacher["plans"], "-c", teacher["configuration"], "-f",
               str(teacher["fold"]), "--save_probabilities", "-npp", str(opts.num_processes), "-nps",
               str(opts.num_processes), "--disable_progress_bar"]
              + (["-device", opts.device] if opts.device else []), opts)
        return {}
    if step == "pseudo_labels":
        record = make_pseudo_labels(round_dir / "predictions", _fresh(round_dir / "pseudo_labels"), base_json,
                                    opts.case_threshold, opts.voxel_threshold, ignore_label)
        n, total = len(record["selected"]), len(record["confidence"])
        print(f"[nnssl_self_train]   {n}/{total} unlabeled case(s) pseudo-labeled"
              + (f" (confidence > {opts.case_threshold})" if opts.case_threshold is not None else ""), flush=True)
        if n == 0:
            print(f"[nnssl_self_train]   WARNING: no case passed --case_threshold {opts.case_threshold}; the student "
                  f"trains on the labeled cases only", flush=True)
        return {"pseudo_labeled": record["selected"]}
    if step == "derive":
        out = paths.raw / name
        if out.exists():  # ours: the id was recorded before the folder was created
            shutil.rmtree(out)
        record = {"round": k, "base_dataset": base, "teacher": teacher, "case_threshold": opts.case_threshold,
                  "voxel_threshold": opts.voxel_threshold, "ignore_label": ignore_label,
                  "pseudo_labeled": state["rounds"][str(k)]["pseudo_labeled"],
                  "pseudo_labels": str(round_dir / "pseudo_labels")}
        derived.write_derived_raw(raw, out, round_dir / "pseudo_labels", record["pseudo_labeled"], ignore_label,
                                  record)
        return {"derived_dataset": name}
    if step == "preprocess":
        pre = _fresh(paths.pre / name)
        # nnU-Net's fingerprint of the derived data (the trainer copies it into its results folder)
        _call(["nnUNetv2_extract_fingerprint", "-d", str(new_id), "-np", str(opts.num_processes)], opts)
        _call(["nnUNetv2_move_plans_between_datasets", "-s", base, "-t", name, "-sp", opts.plans, "-tp", opts.plans],
              opts)
        shutil.copyfile(paths.raw / name / "dataset.json", pre / "dataset.json")  # nnU-Net's preprocessor reads it
        _call(["nnUNetv2_preprocess", "-d", str(new_id), "-plans_name", opts.plans, "-c", opts.configuration,
               "-np", str(opts.num_processes)], opts)
        base_splits = paths.pre / base / "splits_final.json"
        if base_splits.is_file():
            splits = derived.derive_splits(json.loads(base_splits.read_text(encoding="utf-8")),
                                           state["rounds"][str(k)]["pseudo_labeled"])
            _save_json(splits, pre / "splits_final.json")
        elif opts.fold != "all":
            raise FileNotFoundError(f"{base_splits} not found (round 0 should have written it)")
        return {}
    if step == "train":
        model.update(dataset=name, plans=opts.plans)
        pretrained, env = student_start(opts, model_folder(paths, teacher) / "checkpoint_final.pth")
        folder = _train(paths, model, opts, pretrained, env)
        return {"student": model, "student_folder": str(folder)} | ({} if opts.finetune else {"model": model})
    if step == "finetune":
        student = state["rounds"][str(k)]["student"]
        plans = finetune_plans(opts.plans, k)
        derived.copy_plans(paths.pre / base, opts.plans, plans)
        model.update(dataset=base, plans=plans)
        _train(paths, model, opts, pretrained=model_folder(paths, student) / "checkpoint_final.pth")
        return {"model": model}
    raise ValueError(f"unknown step {step!r}")
