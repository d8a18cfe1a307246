"""Shared test helpers: where ../shared lives, and skipping cleanly when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("LATENTSYNC_SHARED", REPO_ROOT.parent / "shared"))
REFERENCE = SHARED / "reference"
AUX_REFERENCE = REFERENCE / "aux"
MEDIA = SHARED / "media"


def shared_file(*parts: str) -> Path:
    """Path of a file under ../shared, or skip the test (with the reason) when it is not there."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"reference data not available: {path} (set LATENTSYNC_SHARED to the shared/ folder)")
    return path


@pytest.fixture(scope="session")
def ckpts(tmp_path_factory):
    """Tiny random VAE, Whisper, U-Net and SyncNet (tools/make_tiny_checkpoints.py), made once per test session."""
    from tools.make_tiny_checkpoints import make_tiny_checkpoints

    return make_tiny_checkpoints(tmp_path_factory.mktemp("tiny_ckpts"))


@pytest.fixture(autouse=True)
def _few_threads():
    """Keep torch from oversubscribing the small CI machines."""
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield
