"""What the tests share besides fixtures: where the repository and ../shared are, and skipping without data."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("LATENTSYNC_SHARED", REPO_ROOT.parent / "shared"))


def write_video(path, frames, fps: float, audio_path=None, audio_duration: float | None = None) -> Path:
    """Encode an iterable of RGB uint8 frame chunks (or single frames) to an H.264 file with
    `latentsync.utils.media.VideoWriter`, muxing audio if given."""
    from latentsync.utils.media import VideoWriter

    with VideoWriter(path, fps, audio_path=audio_path, audio_duration=audio_duration) as writer:
        for chunk in frames:
            writer.write(chunk)
    return Path(path)


def shared_file(*parts: str) -> Path:
    """Path of a file under ../shared, or skip the test (with the reason) when it is not there."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"reference data not available: {path} (set LATENTSYNC_SHARED to the shared/ folder)")
    return path


def shared_json(*parts: str):
    """A JSON file under ../shared (a checkpoint manifest), or skip."""
    return json.loads(shared_file(*parts).read_text())


def shared_tensors(*parts: str):
    """A golden `.pt` file under ../shared, loaded tensors-only, or skip."""
    return torch.load(shared_file(*parts), weights_only=True)


def state_dict_layout(state: Mapping[str, torch.Tensor]) -> list[list]:
    """`[key, shape, dtype]` per entry in order: the form the shared checkpoint manifests record."""
    return [[key, list(tensor.shape), str(tensor.dtype).removeprefix("torch.")] for key, tensor in state.items()]


def shared_fixture(*parts: str):
    """A module-scoped fixture holding one ../shared file (`.json` parsed, else tensors), read on first use.

    Assign it to the fixture's name: `golden = shared_fixture("reference", "mask_golden.pt")`.
    """

    @pytest.fixture(scope="module")
    def fixture():
        return shared_json(*parts) if parts[-1].endswith(".json") else shared_tensors(*parts)

    return fixture
