"""Per-epoch curves of an nnssl training run, read from its nnU-Net training log.

The SSL trainers write one ``ssl terms: key value, ...`` line per epoch (the epoch means of their
loss terms and monitoring shares, and ``ramp``); nnU-Net writes ``Pseudo dice [...]`` per epoch.
This script turns them into the markdown table docs/benchmarks.md shows (one column per epoch,
one row per key, pseudo-Dice per class as ``c1 / c2``), and lists the log's events: the
foreground gate opening (``ramp_start 'foreground'``), collapse warnings and collapse-guard restarts.

Usage: python benchmarks/training_curves.py LOG [--keys frac_fg_net_a ramp] [--epochs 0 5 10]
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from nnssl.monitoring import COLLAPSE_WARNING, RAMP_RESTART_EVENT, RAMP_START_EVENT, SSL_TERMS_PREFIX

_EPOCH = re.compile(r": Epoch (\d+)\s*$")
_NUMBER = re.compile(r"[-+]?(?:nan|inf|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)")
_EVENTS = (RAMP_START_EVENT, COLLAPSE_WARNING, RAMP_RESTART_EVENT)
DEFAULT_KEYS = ("frac_fg_labeled", "frac_fg_net_a", "frac_fg_net_b", "ramp")


def parse_log(text: str) -> tuple[List[Dict[str, object]], List[str]]:
    """Epoch records and event lines of one training log.

    Returns ``(epochs, events)``: ``epochs[i]`` holds ``epoch`` (int), each ``ssl terms`` key
    (float) and ``pseudo_dice`` (list of floats, one per foreground class) where the log has them;
    ``events`` are the gate and warning lines, prefixed with their epoch.
    """
    epochs: List[Dict[str, object]] = []
    events: List[str] = []
    for line in text.splitlines():
        message = line.split(": ", 1)[1] if ": " in line else line
        match = _EPOCH.search(line)
        if match:
            epochs.append({"epoch": int(match.group(1))})
            continue
        if not epochs:
            continue
        current = epochs[-1]
        if message.startswith(SSL_TERMS_PREFIX.strip()):
            for item in message[len(SSL_TERMS_PREFIX.strip()):].split(","):
                key, value = item.split()
                current[key] = float(value)
        elif message.startswith("Pseudo dice"):
            inner = message[message.index("[") + 1:message.rindex("]")].replace("np.float32", "")
            current["pseudo_dice"] = [float(v) for v in _NUMBER.findall(inner)]
        elif any(marker in message for marker in _EVENTS):
            events.append(f"epoch {current['epoch']}: {message.strip()}")
    return epochs, events


def _cell(value: Optional[object]) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " / ".join(f"{v:.2f}" for v in value)
    return f"{value:.3g}"


def curves_table(epochs: Sequence[Dict[str, object]], keys: Sequence[str],
                 select: Optional[Sequence[int]] = None) -> str:
    """Markdown table: a column per selected epoch (all when ``select`` is None), a row per key,
    and a last row of validation pseudo-Dice per class."""
    chosen = [e for e in epochs if select is None or e["epoch"] in set(select)]
    lines = ["| epoch | " + " | ".join(str(e["epoch"]) for e in chosen) + " |",
             "|---|" + "---|" * len(chosen)]
    for key in list(keys) + ["pseudo_dice"]:
        label = "pseudo-Dice (per class)" if key == "pseudo_dice" else key
        lines.append(f"| {label} | " + " | ".join(_cell(e.get(key)) for e in chosen) + " |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="Example: python benchmarks/training_curves.py "
                                            "RESULTS/fold_all/training_log_*.txt --epochs 0 5 10 20 39")
    parser.add_argument("log", type=Path, help="nnU-Net training_log_*.txt of an nnssl trainer")
    parser.add_argument("--keys", nargs="+", default=list(DEFAULT_KEYS),
                        help=f"'ssl terms' keys to show (default: {' '.join(DEFAULT_KEYS)})")
    parser.add_argument("--epochs", nargs="+", type=int, help="epochs to show (default: all)")
    args = parser.parse_args(argv)
    if not args.log.is_file():
        parser.error(f"{args.log}: no such training log")
    epochs, events = parse_log(args.log.read_text())
    if not epochs:
        parser.error(f"{args.log}: no 'Epoch N' line; is this an nnU-Net training log?")
    print(curves_table(epochs, args.keys, args.epochs))
    for event in events:
        print(event)


if __name__ == "__main__":
    main()
