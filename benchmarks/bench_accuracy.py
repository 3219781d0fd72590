"""Accuracy at CPU scale: does each SSL trainer beat supervised-only at an equal iteration budget?

For one settings file (``benchmarks/settings/*.json``, documented in docs/benchmarks.md; one with
``"extends": "<file>"`` states only what differs from that file, see ``accuracy_settings.load_settings``)
the harness
1. prepares two raw datasets from the real data in its original layout: ``ssl`` (``split.labeled`` labeled
   cases, the rest of a ``split.pool`` of training cases unlabeled, ``split.test`` held-out test cases) and
   ``full`` (the same pool, all labeled, the same test cases: the all-labels upper bound);
2. plans and preprocesses ``ssl`` (nnssl_plan_and_preprocess), moves its plans to ``full`` (nnU-Net's
   nnUNetv2_move_plans_between_datasets + nnUNetv2_preprocess), and derives the CPU plans of the settings
   (``nnssl_derive_plans``, one plans name per repetition so repeated runs keep separate result folders)
   with the budget as nnssl hyperparameters (a method's own ``hparams`` go into a plans copy of its own,
   ``<plans>_<method>``, so that it trains into its own results folder);
3. trains every method (nnUNetv2_train; ``nnssl_self_train`` for self-training with the budget split
   over its teacher and rounds, see ``accuracy_self_training``; the quality predictor once per repetition for
   the _QG trainers), predicts the test cases (nnUNetv2_predict) and evaluates them (nnssl_evaluate); a
   self-training run's teacher (its round-0 model) is evaluated too and reported as ``<method>_teacher``;
4. writes ``results.json``, ``results.md`` (tables in the papers' layout, gap closed) and ``dice.png``.
Finished steps are skipped when the harness is re-run with the same work folder (resume after a stop).
With ``--archive DIR`` every finished run's evaluation summary is also kept in ``DIR/<settings name>/``
(small JSON files meant to be committed, e.g. ``docs/results``): runs found there count as finished, so
repetitions accumulate and reports can be rebuilt across machines and sessions whose work folders are gone.
Beside it goes the hyperparameter record its trainer wrote; a finished run whose method now resolves other
hyperparameters (a trainer default changed since) is refused, see ``accuracy_hparams``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy_hparams import TRAINER_RECORD, check_run_hparams  # noqa: E402
from accuracy_report import collect_rows, is_summary_file, pair_method, paired_rows, write_report  # noqa: E402
from accuracy_runs import FinishedRuns  # noqa: E402
from accuracy_self_training import SelfTrainingRuns, self_train_budget  # noqa: E402,F401 (re-exported)
from accuracy_settings import (check_methods_distinct, check_same_settings,  # noqa: E402
                               jobs_warning, load_settings, method_dataset, method_plans_suffix, teacher_method)

REPO = Path(__file__).resolve().parents[1]


class Harness(FinishedRuns, SelfTrainingRuns):
    """One settings file, one work folder (nnU-Net's three folders below it), resumable."""

    def __init__(self, settings: Dict[str, Any], workdir: Path, data_root: Path, device: str, log=print,
                 archive: Optional[Path] = None, create: bool = True):
        self.s, self.work, self.data_root, self.device, self.log = settings, workdir, data_root, device, log
        self.archive = archive / settings["name"] if archive is not None else None
        self.folders = {k: workdir / k for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")}
        if create:
            for p in self.folders.values():
                p.mkdir(parents=True, exist_ok=True)
            (workdir / "logs").mkdir(exist_ok=True)
        from nnssl.cli.discovery import with_ext_trainer_path
        self.env = {**os.environ, **{k: str(v) for k, v in self.folders.items()},
                    "nnUNet_extTrainer": with_ext_trainer_path(os.environ.get("nnUNet_extTrainer")),
                    "MPLBACKEND": "agg",
                    # the console scripts of this interpreter's environment first, even when it is not activated
                    "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
        self.env.setdefault("nnUNet_n_proc_DA", "1")
        self.env.setdefault("nnUNet_def_n_proc", "1")
        self.env.setdefault("nnUNet_compile", "0")
        self.env.pop("nnssl_hparams", None)
        self.ids = settings["dataset_ids"]
        self._predictor_lock = threading.Lock()
        self.cfg = settings["configuration"]

    # ------------------------------------------------------------------ helpers
    def run(self, name: str, *cmd: str, env: Optional[Dict[str, str]] = None) -> None:
        """Run a console script, its output to logs/<name>.log; raise with the log's tail on failure."""
        log_file = self.work / "logs" / f"{name}.log"
        t0 = time.time()
        self.log(f"[{time.strftime('%H:%M:%S')}] {name}: {' '.join(cmd)}", flush=True)
        with open(log_file, "w", encoding="utf-8") as f:
            proc = subprocess.run(list(cmd), env={**self.env, **(env or {})}, stdout=f, stderr=subprocess.STDOUT,
                                  cwd=self.work)
        if proc.returncode != 0:
            tail = log_file.read_text(encoding="utf-8", errors="replace")[-3000:]
            raise RuntimeError(f"{name} failed (exit {proc.returncode}); log {log_file}:\n{tail}")
        self.log(f"    {name} done in {time.time() - t0:.0f} s", flush=True)

    def dataset_name(self, which: str) -> str:
        return f"Dataset{self.ids[which]:03d}_{self.s['name']}_{which}"

    def plans_name(self, rep: int) -> str:
        return f"nnSSLPlans_{self.s['name']}_r{rep}"

    # ------------------------------------------------------------------ 1. data
    def prepare(self) -> None:
        """Convert ``ssl`` and ``full``, plan/preprocess both with the same plans, derive the CPU plans."""
        raw = self.folders["nnUNet_raw"]
        split, src = self.s["split"], self.s["source"]
        for which, labeled in (("ssl", split["labeled"]), ("full", split["pool"])):
            if (raw / self.dataset_name(which) / "dataset.json").is_file():
                continue
            source = self.data_root / src["folder"]
            common = ["-d", str(self.ids[which]), "-n", f"{self.s['name']}_{which}", "-np", "1"]
            if src["kind"] == "msd":
                task = self._msd_pool(source)
                self.run(f"convert_{which}", "nnssl_convert_msd", "-i", str(task), *common,
                         "--labeled", str(labeled), "--test", str(split["test"]), "--seed", str(split["seed"]))
            elif src["kind"] == "la":
                self.run(f"convert_{which}", "nnssl_convert_la", "-i", str(source), *common, "--labeled",
                         str(labeled), "--test", str(split["test"]), "--max_unlabeled",
                         str(split["pool"] - labeled))
            else:
                raise ValueError(f"source.kind {src['kind']!r}: expected 'msd' or 'la'")
        pre = self.folders["nnUNet_preprocessed"]
        done_ssl = self.work / "logs" / "plan_ssl.done"
        if not done_ssl.is_file():  # nnssl_plan_and_preprocess itself resumes an interrupted run
            extra = ["--target_spacing", *map(str, self.s["target_spacing"])] if "target_spacing" in self.s else []
            self.run("plan_ssl", "nnssl_plan_and_preprocess", "-d", str(self.ids["ssl"]), "-c", self.cfg,
                     "-np", "1", *extra)
            done_ssl.write_text("nnssl_plan_and_preprocess finished\n")
        done_full = self.work / "logs" / "preprocess_full.done"
        if not done_full.is_file():
            # nnU-Net's fingerprint (trainers copy it into their results) and dataset.json (nnU-Net's planning
            # step would copy it), then the ssl dataset's plans
            self.run("fingerprint_full", "nnUNetv2_extract_fingerprint", "-d", str(self.ids["full"]), "-np", "1")
            shutil.copy(raw / self.dataset_name("full") / "dataset.json", pre / self.dataset_name("full"))
            self.run("plans_to_full", "nnUNetv2_move_plans_between_datasets", "-s", str(self.ids["ssl"]),
                     "-t", str(self.ids["full"]), "-sp", "nnSSLPlans", "-tp", "nnSSLPlans")
            self.run("preprocess_full", "nnUNetv2_preprocess", "-d", str(self.ids["full"]), "-plans_name",
                     "nnSSLPlans", "-c", self.cfg, "-np", "1")
            done_full.write_text("nnUNetv2_preprocess finished\n")  # marker: the step ran to its end
        p = self.s["plans"]
        for rep in range(self.s.get("repetitions", 1)):
            for which in ("ssl", "full"):
                if (pre / self.dataset_name(which) / f"{self.plans_name(rep)}.json").is_file():
                    continue
                args = ["--patch_size", *map(str, p["patch_size"]), "--n_stages", str(p["n_stages"]),
                        "--features_base", str(p["features_base"]), "--features_max", str(p["features_max"]),
                        "--batch_size", str(p["batch_size"])]
                self.run(f"derive_plans_{which}_r{rep}", "nnssl_derive_plans", "-d", str(self.ids[which]),
                         "-o", self.plans_name(rep), "-c", self.cfg, *args, "--hparams",
                         json.dumps(self.s["hparams"]))

    def _msd_pool(self, source: Path) -> Path:
        """MSD-layout copy of ``pool + test`` cases drawn (seeded) from ``source``."""
        import numpy as np
        task = self.work / "source_subset"
        if (task / "dataset.json").is_file():
            return task
        from nnssl.dataset_conversion.msd import copy_msd_cases, msd_case_ids
        ids = msd_case_ids(source)
        n = self.s["split"]["pool"] + self.s["split"]["test"]
        if n > len(ids):
            raise ValueError(f"split pool + test = {n} exceeds the {len(ids)} cases of {source}")
        chosen = sorted(ids[i] for i in np.random.default_rng(self.s["split"]["seed"]).choice(len(ids), n, False))
        tmp = task.with_name(task.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        copy_msd_cases(source, tmp, chosen)
        os.rename(tmp, task)
        return task

    # ------------------------------------------------------------------ 2. methods
    def predictor_path(self, rep: int) -> Path:
        from nnssl.quality.io import default_predictor_path
        return Path(default_predictor_path(self.dataset_name("ssl"), self.plans_name(rep), self.cfg,
                                           results_root=self.folders["nnUNet_results"]))

    def train_quality_predictor(self, rep: int) -> Path:
        """The repetition's quality predictor (trained once; concurrent _QG jobs wait for it)."""
        with self._predictor_lock:
            path = self.predictor_path(rep)
            if path.is_file():
                return path
            q = self.s["quality_predictor"]
            self.run(f"quality_predictor_r{rep}", "nnssl_train_quality_predictor", "-d", str(self.ids["ssl"]),
                     "-c", self.cfg, "-p", self.plans_name(rep), "--iterations", str(q["iterations"]),
                     "--batch_size", str(q["batch_size"]), "--holdout_fraction", str(q["holdout_fraction"]),
                     "--seed", str(rep), "-device", self.device)
        return path

    def run_method(self, method: str, rep: int) -> Path:
        """Train, predict and evaluate one method; returns the nnssl_evaluate summary JSON. A self-training
        method's teacher is evaluated too (:meth:`evaluate_teacher`)."""
        spec = self.s["methods"][method]
        finished = self.finished_summary(method, rep)
        if finished is None:
            finished = self._train_and_evaluate(method, rep, spec)
        if "self_train" in spec:
            self.evaluate_teacher(method, rep)
        return finished

    def method_plans(self, method: str, rep: int) -> str:
        """The plans a method trains with: the run's, or the copy ``<plans>_<suffix>`` of ``method_plans_suffix``
        (a self-training method's ``plans_suffix``, or the name of a method with ``hparams``)."""
        suffix = method_plans_suffix(method, self.s["methods"][method])
        return f"{self.plans_name(rep)}_{suffix}" if suffix else self.plans_name(rep)

    def _write_method_plans(self, method: str, rep: int) -> str:
        """Write the method's plans copy when it has one (a not self-training method's ``hparams`` merged into its
        ``nnssl_hparams``; a self-training method's reach its trainings through the environment); returns its name."""
        spec, plans = self.s["methods"][method], self.method_plans(method, rep)
        if plans != self.plans_name(rep):
            from nnssl.self_training.derived import copy_plans
            copy_plans(self.folders["nnUNet_preprocessed"] / self.dataset_name(method_dataset(spec)),
                       self.plans_name(rep), plans, hparams=None if "self_train" in spec else spec["hparams"])
        return plans

    def _train_and_evaluate(self, method: str, rep: int, spec: Dict[str, Any]) -> Path:
        which = method_dataset(spec)
        fold, trainer = str(self.s["fold"]), spec["trainer"]
        # a self-training method's hparams reach its trainings through the environment, any other's its plans
        hparams = dict(spec.get("hparams", {})) if "self_train" in spec else {}
        if spec.get("quality_predictor"):  # a path on this machine: through the environment
            hparams["qg_predictor"] = str(self.train_quality_predictor(rep))
        env = {"nnssl_hparams": json.dumps(hparams)} if hparams else {}
        model_dataset = str(self.ids[which])
        if "self_train" in spec:
            model_dataset, plans, trainer = self._self_train(method, rep, spec, env)
        else:
            plans = self._write_method_plans(method, rep)
            ckpt = self.results_folder(method, rep) / "checkpoint_final.pth"
            if ckpt.with_name(TRAINER_RECORD).is_file():  # a training to reuse or resume: is it this method's?
                check_run_hparams(self.s, method, rep, ckpt.with_name(TRAINER_RECORD))
            if not ckpt.is_file():
                cont = ["--c"] if ckpt.with_name("checkpoint_latest.pth").is_file() else []
                self.run(f"train_{method}_r{rep}", "nnUNetv2_train", model_dataset, self.cfg, fold, "-tr", trainer,
                         "-p", plans, "-device", self.device, *cont, env=env)
        return self._predict_and_evaluate(method, rep, model_dataset, plans, trainer, fold)

    def _predict_and_evaluate(self, name: str, rep: int, dataset: str, plans: str, trainer: str, fold: str) -> Path:
        """nnUNetv2_predict the test cases with one trained model, nnssl_evaluate them; the summary lands at
        ``summary_path(name, rep)`` (moved there complete) and in the archive."""
        out = self.summary_path(name, rep).parent
        tmp = out.with_name(out.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        test_images = self.folders["nnUNet_raw"] / self.dataset_name("ssl") / "imagesTs"
        self.run(f"predict_{name}_r{rep}", "nnUNetv2_predict", "-i", str(test_images), "-o", str(tmp), "-d",
                 dataset, "-c", self.cfg, "-f", fold, "-tr", trainer, "-p", plans, "-device", self.device,
                 "-npp", "1", "-nps", "1", "--disable_progress_bar",
                 *([] if self.s.get("tta", True) else ["--disable_tta"]))
        self.run(f"evaluate_{name}_r{rep}", "nnssl_evaluate", "-ref",
                 str(self.folders["nnUNet_raw"] / self.dataset_name("ssl") / "labelsTs"), "-pred", str(tmp),
                 "-d", str(self.ids["ssl"]), "-np", "1")
        shutil.rmtree(out, ignore_errors=True)
        os.rename(tmp, out)
        return self.finished_summary(name, rep)

def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Example: python benchmarks/bench_accuracy.py --settings "
                                       "benchmarks/settings/hippocampus_cpu.json --workdir /tmp/bench_hippo "
                                       "--methods supervised full cps")
    p.add_argument("--settings", required=True, help="settings JSON (benchmarks/settings/)")
    p.add_argument("--workdir", required=True, help="work folder (nnU-Net folders, predictions, logs); reused")
    p.add_argument("--data", default=os.environ.get("NNSSL_DATA", str(REPO.parent / "shared" / "data")),
                   help="folder with the real data (default: $NNSSL_DATA or ../shared/data)")
    p.add_argument("--methods", nargs="+", default=None, help="subset of the settings' methods (default: all)")
    p.add_argument("--repetitions", type=int, default=None, help="override the settings' repetitions")
    p.add_argument("--out", default=None, help="report folder (default: WORKDIR/report)")
    p.add_argument("--report_only", action="store_true",
                   help="train nothing: report every finished run of the methods (up to --repetitions runs each; "
                        "methods without a finished run are left out and listed)")
    p.add_argument("--archive", default=None,
                   help="folder that keeps every finished run's summary (in a subfolder named after the settings; "
                        "e.g. docs/results, to commit): archived runs count as finished and are reported")
    p.add_argument("--pair", nargs=2, action="append", default=[], metavar=("A", "B"),
                   help="also compare A with B paired over the test cases (repeatable); each is a method (its runs "
                        "averaged per case), one run of it, METHOD:rN, or an nnssl_evaluate summary file (a run "
                        "made outside the harness), e.g. --pair dual_qg_fgramp supervised:r1")
    p.add_argument("-device", default="cuda" if _cuda() else "cpu")
    p.add_argument("--jobs", type=int, default=1,
                   help="methods trained at the same time (CPU: each gets OMP_NUM_THREADS=1; needs 2+ cores per job "
                        "to gain anything; default 1)")
    a = p.parse_args(argv)
    settings = load_settings(Path(a.settings))
    if a.repetitions is not None:
        settings["repetitions"] = a.repetitions
    methods = a.methods or list(settings["methods"])
    unknown = [m for m in methods if m not in settings["methods"]]
    if unknown:
        p.error(f"unknown method(s) {unknown}; the settings define {list(settings['methods'])}")
    reported = methods + [teacher_method(m) for m in methods if "self_train" in settings["methods"][m]]
    unpaired = [x for pair in a.pair for x in pair if pair_method(x) not in reported and not is_summary_file(x)]
    if unpaired:
        p.error(f"--pair {unpaired}: neither among the reported methods {reported} nor an nnssl_evaluate "
                "summary file")
    check_methods_distinct(settings)
    archive = Path(a.archive).absolute() if a.archive else None
    records = [Path(a.workdir) / "settings.json"] + ([archive / settings["name"] / "settings.json"] if archive else [])
    if a.report_only and not any(r.is_file() for r in records):
        p.error(f"--report_only: {a.workdir} holds no benchmark (no settings.json)"
                + (f" and {records[-1].parent} no archived one" if archive else "") + "; check --workdir")
    h = Harness(settings, Path(a.workdir).absolute(), Path(a.data), a.device, archive=archive,
                create=not a.report_only)
    if archive is not None:  # also when reporting: the work folder's finished runs are archived then
        records[-1].parent.mkdir(parents=True, exist_ok=True)
    for record in records:  # the work folder's and the archive's runs must come from the same settings
        if record.parent.is_dir():
            check_same_settings(settings, record)
    reps = range(settings.get("repetitions", 1))
    out = Path(a.out or Path(a.workdir) / "report")
    command = " ".join([Path(sys.argv[0]).name] + (argv or sys.argv[1:]))
    if a.report_only:
        found = {m: {rep: f for rep in reps if (f := h.finished_summary(m, rep)) is not None} for m in methods}
        missing = [m for m, files in found.items() if not files]
        if missing:
            print(f"no finished run, left out of the report: {', '.join(missing)}", file=sys.stderr)
        return _report(_with_teachers(h, {m: f for m, f in found.items() if f}, reps), settings, out, command,
                       a.pair)
    warning = jobs_warning(a.jobs, a.device, os.cpu_count())
    if warning:
        print(warning, file=sys.stderr, flush=True)
    h.prepare()
    # _QG methods last: with --jobs the others run while the first _QG job trains the predictor
    ordered = sorted(methods, key=lambda m: bool(settings["methods"][m].get("quality_predictor")))
    tasks = [(m, rep) for rep in reps for m in ordered]
    if a.jobs > 1:
        h.env["OMP_NUM_THREADS"] = "1"
    done, failed = {}, {}
    with ThreadPoolExecutor(max(1, a.jobs)) as pool:  # a failed method does not stop the others
        futures = {t: pool.submit(h.run_method, *t) for t in tasks}
        for t, future in futures.items():
            try:
                done[t] = future.result()
            except Exception as e:  # noqa: BLE001 - reported below, the run goes on
                failed[t] = e
                print(f"error: {t[0]} (run {t[1]}) failed: {e}", file=sys.stderr, flush=True)
    if failed:
        print(f"error: {len(failed)} method run(s) failed: {sorted(failed)}; no report written", file=sys.stderr)
        return 1
    summaries = {m: {rep: done[(m, rep)] for rep in reps} for m in methods}
    return _report(_with_teachers(h, summaries, reps), settings, out, command, a.pair)


def _with_teachers(h: Harness, summaries: Dict[str, Dict[int, Path]], reps: range) -> Dict[str, Dict[int, Path]]:
    """``summaries`` with each self-training method's evaluated teachers as method ``<method>_teacher`` (right
    after it; left out when none of its runs' teachers was evaluated)."""
    out = {}
    for m, files in summaries.items():
        out[m] = files
        if "self_train" in h.s["methods"][m]:
            teachers = {rep: f for rep in reps if (f := h.finished_summary(teacher_method(m), rep)) is not None}
            if teachers:
                out[teacher_method(m)] = teachers
    return out


def _report(summaries: Dict[str, Dict[int, Path]], settings: Dict[str, Any], out: Path, command: str,
            pairs: List[List[str]]) -> int:
    """Write results.json/.md and dice.png of ``summaries`` ({method: {repetition: summary}}) into ``out``,
    with the paired comparisons ``pairs``, and print the tables."""
    if not summaries:
        print("error: no finished run to report", file=sys.stderr)
        return 1
    rows = collect_rows(summaries, settings)
    try:
        compared = paired_rows(rows, pairs)
    except ValueError as e:
        print(f"error: {e}; no report written", file=sys.stderr)
        return 1
    write_report(rows, settings, out, command=command, pairs=compared)
    print((out / "results.md").read_text())
    return 0


def _cuda() -> bool:
    try:
        import torch
        return torch.cuda.is_available()
    except ImportError:
        return False


if __name__ == "__main__":
    raise SystemExit(main())
