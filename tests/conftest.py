"""Shared pytest fixtures.

Real data comes from ``$NNSSL_DATA`` (default: ``../shared/data`` beside the repository), holding
``LA/`` and ``Hippocampus/`` in their original distributed layouts.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


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
    paths = {k: tmp_path / k for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")}
    for k, p in paths.items():
        p.mkdir()
        monkeypatch.setenv(k, str(p))
    return paths
