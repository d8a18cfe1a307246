"""scripts/*.py are shims: importing one gives the `latentsync.cli` module itself, and `python -m scripts.X`
from the repository root still runs the command, as in the official layout."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from tests.helpers import REPO_ROOT


@pytest.mark.parametrize("name", ["inference", "train_unet", "train_syncnet"])
def test_shim_is_the_package_module(name):
    assert importlib.import_module(f"scripts.{name}") is importlib.import_module(f"latentsync.cli.{name}")


@pytest.mark.parametrize(("official", "module"), [("latentsync.utils.affine_transform", "latentsync.faces.alignment"),
                                                  ("latentsync.utils.face_detector", "latentsync.faces.detector")])
def test_official_face_paths_are_the_package_modules(official, module):
    """The face code's compatibility surface (docs/faces.md): the official paths give the modules themselves."""
    assert importlib.import_module(official) is importlib.import_module(module)


@pytest.mark.parametrize(("name", "flag"), [("inference", "--video_path"), ("train_unet", "--unet_config_path"),
                                            ("train_syncnet", "--config_path")])
def test_python_m_scripts_runs_help(name, flag):
    proc = subprocess.run([sys.executable, "-m", f"scripts.{name}", "--help"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage:") and flag in proc.stdout
