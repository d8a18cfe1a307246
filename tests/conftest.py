"""Fixtures every test module may use; each costly one is built once per test session.

Plain helpers (paths, `shared_file`) live in tests/helpers.py so that no test imports from this file.
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _private_reuse_cache(tmp_path_factory):
    """Runs that use the reuse cache (the CLI and the app by default) write to a session folder, never to the
    user's cache folder; child processes inherit it."""
    os.environ["LATENTSYNC_CACHE_DIR"] = str(tmp_path_factory.mktemp("reuse_cache"))


@pytest.fixture(scope="session")
def ckpts(tmp_path_factory):
    """Tiny random VAE, Whisper, U-Net and SyncNet (tools/make_tiny_checkpoints.py, seed 0); tests only read them."""
    from tools.make_tiny_checkpoints import make_tiny_checkpoints

    return make_tiny_checkpoints(tmp_path_factory.mktemp("tiny_ckpts"))


@pytest.fixture(scope="session")
def raw_dir(tmp_path_factory):
    """The data-processing input folder (tests/data_processing_fixtures.py); tests run on copies of it."""
    from tests import data_processing_fixtures as fx

    return fx.build_fixture_folder(tmp_path_factory.mktemp("fixtures") / "raw")


@pytest.fixture(autouse=True)
def _few_threads():
    """Keep torch from oversubscribing the small CI machines, whose cores pytest-xdist's workers share."""
    import torch

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // workers)))
    yield
