"""Shared pytest fixtures.

Real data comes from ``$NNSSL_DATA`` (default: ``../shared/data`` beside the repository), holding
``LA/`` and ``Hippocampus/`` in their original distributed layouts.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import json

import pytest

from realdata import TINY_HPARAMS, TINY_PLANS, TINY_PLANS_ARGS, Workspace, make_msd_subset, nnunet_folders

REPO_ROOT = Path(__file__).resolve().parents[1]

# console scripts of the interpreter running the tests come first (a venv need not be activated)
os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])


@pytest.fixture(autouse=True)
def _keep_locale():
    """Restore the process locale after each test (native libraries may call setlocale)."""
    import locale
    saved = locale.setlocale(locale.LC_ALL)
    yield
    locale.setlocale(locale.LC_ALL, saved)


def data_root() -> Path:
    """Folder with the real datasets (env var NNSSL_DATA, else ../shared/data)."""
    return Path(os.environ.get("NNSSL_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def hippocampus_dir() -> Path:
    d = data_root() / "Hippocampus"
    if not (d / "dataset.json").is_file():
        pytest.skip(f"real Hippocampus data not found at {d} (set NNSSL_DATA)")
    return d


@pytest.fixture(scope="session")
def la_dir() -> Path:
    d = data_root() / "LA"
    if not (d / "train.list").is_file():
        pytest.skip(f"real LA data not found at {d} (set NNSSL_DATA)")
    return d


@pytest.fixture
def nnunet_env(tmp_path, monkeypatch) -> dict[str, Path]:
    """Point nnU-Net's three folders into tmp_path (for code reading os.environ at call time)."""
    paths = nnunet_folders(tmp_path)
    for k, p in paths.items():
        monkeypatch.setenv(k, str(p))
    return paths


@pytest.fixture(scope="session")
def hippo_ws(hippocampus_dir, tmp_path_factory) -> Workspace:
    """12 real Hippocampus cases through the real CLIs: 5 labeled, 5 unlabeled, 2 test (seed 0);
    planned and preprocessed (nnSSLPlans) plus a tiny-network plans file (TINY_PLANS)."""
    ws = Workspace(tmp_path_factory.mktemp("hippo"))
    make_msd_subset(hippocampus_dir, ws.root / "Task04_Hippocampus", 12)
    ws.run("nnssl_convert_msd", "-i", str(ws.root / "Task04_Hippocampus"), "-d", "501", "--labeled", "5",
           "--test", "2", "--seed", "0")
    ws.run("nnssl_plan_and_preprocess", "-d", "501", "-np", "2")
    ws.run("nnssl_derive_plans", "-d", "501", "-o", TINY_PLANS, *TINY_PLANS_ARGS, "--hparams",
           json.dumps(TINY_HPARAMS))
    return ws
