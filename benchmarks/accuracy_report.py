"""Tables, gap closed and the Dice plot of the accuracy benchmark (``bench_accuracy.py``).

Per method, every test case's metric is the mean over the foreground classes (nnssl_evaluate's "mean"
row), averaged over the repetitions; the table gives mean +- std over test cases (the papers' layout),
HD95/ASD in mm over cases where they are defined. Gap closed = (Dice_m - Dice_sup) / (Dice_full - Dice_sup)
with Dice_sup of ``supervised`` (the labeled cases only) and Dice_full of ``full`` (all pool cases labeled),
both at the same budget. Paired comparison with supervised-only over the same test cases: share of cases
improved and the Wilcoxon signed-rank p-value. Run against run (training randomness, which the per-case
test does not see): the share of (run of A, run of B) pairs in which A's mean Dice is higher, ties counted
half, i.e. U / (n_A n_B) of the Mann-Whitney test, with its two-sided p over the run means. ``paired_rows``
compares any two methods, single runs or outside runs (``method``, ``method:rN`` or an nnssl_evaluate
summary file) both ways.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import numpy as np

from accuracy_settings import method_hparams, method_trainer

METRICS = ("dice", "jaccard", "hd95_mm", "asd_mm")
HEADERS = ("Dice (%)", "Jaccard (%)", "HD95 (mm)", "ASD (mm)")


def per_case_values(summary: Dict[str, Any]) -> Dict[str, Dict[str, float]]:
    """{case: {metric: mean over the summary's labels}} of one nnssl_evaluate summary (NaN if undefined)."""
    labels = [str(lab) for lab in summary["labels"]]
    out = {}
    for case in summary["per_case"]:
        m = case["metrics"]
        out[case["case"]] = {k: float(np.mean([np.nan if m[lab][k] is None else m[lab][k] for lab in labels]))
                             for k in METRICS}
    return out


def gap_closed(dice: float, dice_sup: float, dice_full: float) -> float:
    """(dice - dice_sup) / (dice_full - dice_sup); NaN when the gap is not positive."""
    gap = dice_full - dice_sup
    return (dice - dice_sup) / gap if gap > 0 else float("nan")


def _nanmean(values) -> float:
    """Mean ignoring NaN; NaN (without a warning) when nothing is defined."""
    a = np.asarray(values, dtype=float)
    return float(a[~np.isnan(a)].mean()) if (~np.isnan(a)).any() else float("nan")


def _nanstd(values) -> float:
    a = np.asarray(values, dtype=float)
    return float(a[~np.isnan(a)].std()) if (~np.isnan(a)).any() else float("nan")


def collect_rows(summaries: Mapping[str, Mapping[int, Path]], settings: Dict[str, Any]) -> List[Dict[str, Any]]:
    """One row per method from ``{method: {repetition: nnssl_evaluate summary}}``: per-case values (averaged
    over repetitions), stats, run-to-run spread and each run's per-case Dice (for ``paired_rows``)."""
    rows = []
    for method, files in summaries.items():
        reps = sorted(files)
        runs = [per_case_values(json.loads(Path(files[rep]).read_text())) for rep in reps]
        cases = sorted(runs[0])
        if any(sorted(r) != cases for r in runs):
            raise ValueError(f"{method}: repetitions evaluated different test cases")
        values = {k: np.array([_nanmean([r[c][k] for r in runs]) for c in cases]) for k in METRICS}
        run_values = [[r[c]["dice"] for c in cases] for r in runs]
        rows.append({"method": method, "trainer": method_trainer(settings, method),
                     "hparams": method_hparams(settings, method), "cases": cases,
                     "values": {k: v.tolist() for k, v in values.items()},
                     "stats": {k: {"mean": _nanmean(v), "std": _nanstd(v),
                                   "n": int(np.sum(~np.isnan(v)))} for k, v in values.items()},
                     "runs": reps, "run_values": run_values, "run_dice": [_nanmean(v) for v in run_values]})
    _add_comparisons(rows)
    return rows


def _add_comparisons(rows: List[Dict[str, Any]]) -> None:
    by = {r["method"]: r for r in rows}
    if "supervised" not in by:
        return
    sup = np.array(by["supervised"]["values"]["dice"])
    full = by["full"]["stats"]["dice"]["mean"] if "full" in by else float("nan")
    for r in rows:
        r["gap_closed"] = gap_closed(r["stats"]["dice"]["mean"], float(np.mean(sup)), full)
        if r["method"] != "supervised":
            r.update(_paired(np.array(r["values"]["dice"]), sup))
            r.update(run_level(r["run_dice"], by["supervised"]["run_dice"]))


def _paired(a: np.ndarray, b: np.ndarray) -> Dict[str, float]:
    """Per-case a against b over the same cases: share of cases with a > b and the Wilcoxon signed-rank p
    (1.0 when a == b everywhere)."""
    return {"improved_cases": float(np.mean(a > b)), "wilcoxon_p": _wilcoxon(a, b)}


def run_level(runs_a: Sequence[float], runs_b: Sequence[float]) -> Dict[str, float]:
    """Mean Dice of A's runs (n_A) against B's (n_B), by scipy's two-sided Mann-Whitney test:
    ``runs_above`` = U / (n_A n_B) with U = #{(i, j): a_i > b_j} + #{(i, j): a_i = b_j} / 2, and its p
    ``runs_p`` (1.0 when nothing can be ordered: one run each, or all run means equal)."""
    from scipy.stats import mannwhitneyu
    a, b = np.asarray(runs_a, dtype=float), np.asarray(runs_b, dtype=float)
    test = mannwhitneyu(a, b, alternative="two-sided")
    return {"runs_above": float(test.statistic) / (a.size * b.size), "runs_p": float(test.pvalue)}


def _wilcoxon(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import wilcoxon
    if np.allclose(a, b):
        return 1.0
    return float(wilcoxon(a, b).pvalue)


def is_summary_file(spec: str) -> bool:
    """Whether a ``--pair`` operand names an nnssl_evaluate summary file (a run made outside the harness)."""
    return spec.endswith(".json") and Path(spec).is_file()


def pair_method(spec: str) -> str:
    """The method a ``--pair`` operand names: ``method`` or ``method:rN``."""
    return spec.partition(":")[0]


def pair_operand(rows: Sequence[Dict[str, Any]], spec: str) -> Tuple[np.ndarray, List[str], List[float]]:
    """Per-case Dice named by ``spec``: ``method`` (averaged over its runs, as in the table), ``method:rN``
    (its run N alone) or the path of an nnssl_evaluate summary; returns (values, test cases, mean Dice of
    each run). Raises ValueError naming what exists."""
    method, run = pair_method(spec), spec.partition(":")[2]
    by = {r["method"]: r for r in rows}
    if method not in by and is_summary_file(spec):
        try:
            values = per_case_values(json.loads(Path(spec).read_text()))
        except (ValueError, KeyError, TypeError) as e:  # JSONDecodeError is a ValueError
            raise ValueError(f"pair {spec!r}: not an nnssl_evaluate summary ({type(e).__name__}: {e})") from None
        cases = sorted(values)
        dice = np.array([values[c]["dice"] for c in cases])
        return dice, cases, [_nanmean(dice)]
    if method not in by:
        raise ValueError(f"pair {spec!r}: no finished run of method {method!r} (reported: {sorted(by)})")
    row = by[method]
    if not run:
        return np.array(row["values"]["dice"]), row["cases"], list(row["run_dice"])
    if not (run.startswith("r") and run[1:].isdigit() and int(run[1:]) in row["runs"]):
        raise ValueError(f"pair {spec!r}: {method} has runs {['r%d' % k for k in row['runs']]}")
    k = row["runs"].index(int(run[1:]))
    return np.array(row["run_values"][k]), row["cases"], [row["run_dice"][k]]


def paired_rows(rows: Sequence[Dict[str, Any]], pairs: Sequence[Sequence[str]]) -> List[Dict[str, Any]]:
    """One comparison per (A, B): mean Dice of each over the same test cases, mean difference A - B,
    share of cases where A is better, Wilcoxon signed-rank p, and run against run (``run_level``)."""
    out = []
    for a, b in pairs:
        (va, cases_a, runs_a), (vb, cases_b, runs_b) = pair_operand(rows, a), pair_operand(rows, b)
        if cases_a != cases_b:
            raise ValueError(f"pair {a!r} {b!r}: evaluated on different test cases")
        out.append({"a": a, "b": b, "dice_a": _nanmean(va), "dice_b": _nanmean(vb),
                    "difference": _nanmean(va - vb), **_paired(va, vb), **run_level(runs_a, runs_b)})
    return out


def pairs_table(pairs: Sequence[Dict[str, Any]]) -> str:
    """Markdown table of ``paired_rows``' output (Dice in %)."""
    lines = ["| A | B | Dice A (%) | Dice B (%) | A - B | Cases A better | Wilcoxon p | Runs A > B | Mann-Whitney p |",
             "|" + "---|" * 9]
    for p in pairs:
        lines.append(f"| {p['a']} | {p['b']} | {100 * p['dice_a']:.2f} | {100 * p['dice_b']:.2f} | "
                     f"{100 * p['difference']:+.2f} | {100 * p['improved_cases']:.0f}% | {p['wilcoxon_p']:.3g} | "
                     f"{100 * p['runs_above']:.0f}% | {p['runs_p']:.3g} |")
    return "\n".join(lines)


def markdown_table(rows: List[Dict[str, Any]]) -> str:
    """The papers' layout plus run spread, gap closed and the comparison with supervised-only (per case, and
    run against run); n/a where a distance is undefined on every case (an empty prediction or reference)."""
    head = ["Method", "Trainer", *HEADERS, "Dice per run", "Gap closed", "Cases improved", "Wilcoxon p",
            "Runs > sup."]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["method"], f"`{r['trainer']}`" + "".join(f" {k}={v}" for k, v in r.get("hparams", {}).items())]
        for k in METRICS:
            scale = 100.0 if k in ("dice", "jaccard") else 1.0
            st = r["stats"][k]
            cells.append("n/a" if np.isnan(st["mean"]) else f"{st['mean'] * scale:.2f} ± {st['std'] * scale:.2f}")
        cells.append(", ".join(f"{100 * d:.2f}" for d in r["run_dice"]))
        gc, imp, p = r.get("gap_closed", np.nan), r.get("improved_cases", np.nan), r.get("wilcoxon_p", np.nan)
        cells.append("" if r["method"] in ("supervised", "full") or np.isnan(gc) else f"{100 * gc:.0f}%")
        cells.append("" if r["method"] == "supervised" or np.isnan(imp) else f"{100 * imp:.0f}%")
        cells.append("" if np.isnan(p) else f"{p:.3g}")
        above, p_runs = r.get("runs_above", np.nan), r.get("runs_p", np.nan)
        cells.append("" if np.isnan(above) else f"{100 * above:.0f}% (p {p_runs:.2g})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_dice(rows: List[Dict[str, Any]], path: Path, title: str) -> None:
    """Per-case Dice (dots, a method's runs averaged per case), mean (bar) and each run's mean Dice (orange
    ticks: run-to-run spread, e.g. a supervised run that never separates the classes) per method."""
    import matplotlib
    matplotlib.use("agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(1.1 * len(rows) + 2, 4))
    rng = np.random.default_rng(0)
    for i, r in enumerate(rows):
        d = 100 * np.array(r["values"]["dice"])
        ax.bar(i, np.mean(d), color="#9ecae1" if r["method"] not in ("supervised", "full") else "#cccccc")
        ax.scatter(i + rng.uniform(-0.25, 0.25, d.size), d, s=6, color="#08519c", zorder=3)
        ax.scatter(np.full(len(r["run_dice"]), i), 100 * np.array(r["run_dice"]), marker="_", s=250,
                   color="#e6550d", zorder=4, label="mean Dice of one run" if i == 0 else None)
    ax.set_xticks(range(len(rows)), [r["method"] for r in rows], rotation=35, ha="right")
    ax.set_ylabel("Dice (%) per test case, bar = mean")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small")
    lo = min(100 * min(min(r["values"]["dice"]), min(r["run_dice"])) for r in rows)
    ax.set_ylim(max(0.0, lo - 5), 100)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _json_safe(obj: Any) -> Any:
    """NaN -> None, numpy scalars -> Python (strict JSON)."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return None if np.isnan(obj) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def write_report(rows: List[Dict[str, Any]], settings: Dict[str, Any], out: Path, command: str,
                 pairs: Sequence[Dict[str, Any]] = ()) -> None:
    """results.json, results.md and dice.png in ``out``; ``pairs`` (from ``paired_rows``) as a second table."""
    out.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip() or "unknown"
    content = {"settings": settings, "command": command, "commit": commit, "rows": rows, "pairs": list(pairs)}
    (out / "results.json").write_text(json.dumps(_json_safe(content), indent=2, allow_nan=False))
    plot_dice(rows, out / "dice.png", settings["name"])
    n = len(rows[0]["cases"]) if rows else 0
    runs = sorted({len(r["run_dice"]) for r in rows})
    per_method = f"{runs[0]} run(s) per method" if len(runs) == 1 else \
        f"{runs[0]}-{runs[-1]} runs per method (see Dice per run)"
    text = (f"Settings `{settings['name']}`, {n} test cases, {per_method}, "
            f"commit {commit}.\nCommand: `{command}`\n\n" + markdown_table(rows) + "\n")
    if pairs:
        text += ("\nPaired over the test cases (per-case Dice, class mean; a method's runs averaged per case), "
                 "and run against run (each run's mean Dice):\n\n") \
                + pairs_table(pairs) + "\n"
    (out / "results.md").write_text(text)
