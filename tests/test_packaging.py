"""A non-editable install holds only the `latentsync` package (with its configs) and its console script works.

The install runs offline (`--no-index --no-build-isolation`: setuptools comes from the venv) from a copy of
the sources, so the checkout gets no build/ or egg-info and stale build output cannot leak into the wheel.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.slow


def _offline_backend_missing() -> str | None:
    """Why the venv cannot build the wheel without the network, or None (setuptools >= 70.1 has bdist_wheel
    built in; older ones need the `wheel` package)."""
    if importlib.util.find_spec("setuptools") is None:
        return "setuptools is not installed in this environment"
    import setuptools

    major, minor = (int(x) for x in setuptools.__version__.split(".")[:2])
    if (major, minor) < (68, 0):
        return f"setuptools {setuptools.__version__} is older than the >=68 that pyproject.toml asks for"
    if (major, minor) < (70, 1) and importlib.util.find_spec("wheel") is None:
        return f"setuptools {setuptools.__version__} needs the `wheel` package to build offline"
    return None


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    reason = _offline_backend_missing()
    if reason:
        pytest.skip(f"cannot build offline: {reason}")
    src = tmp_path_factory.mktemp("src")
    shutil.copy(REPO_ROOT / "pyproject.toml", src)
    shutil.copy(REPO_ROOT / "README.md", src)
    shutil.copytree(REPO_ROOT / "latentsync", src / "latentsync",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    target = tmp_path_factory.mktemp("target")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                    "--quiet", "--target", str(target), str(src)], check=True, capture_output=True, timeout=600)
    return target


def _run_outside_repo(target: Path, argv: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(target)}
    return subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_only_latentsync_is_installed(installed):
    top = sorted(p.name for p in installed.iterdir())
    others = [n for n in top if n not in ("latentsync", "bin") and not n.endswith(".dist-info")]
    assert others == [], f"the install puts more than latentsync at the top level: {top}"
    assert sorted(p.name for p in (installed / "bin").iterdir()) == [
        "latentsync", "latentsync-train-syncnet", "latentsync-train-unet"]


def test_every_config_ships(installed):
    shipped = sorted(p.relative_to(installed / "latentsync").as_posix()
                     for p in (installed / "latentsync" / "configs").rglob("*") if p.is_file())
    in_repo = sorted(p.relative_to(REPO_ROOT / "latentsync").as_posix()
                     for p in (REPO_ROOT / "latentsync" / "configs").rglob("*") if p.is_file())
    assert shipped == in_repo
    assert "configs/unet/stage2.yaml" in shipped


def test_console_script_help_outside_repo(installed, tmp_path):
    proc = _run_outside_repo(installed, [str(installed / "bin" / "latentsync"), "--help"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: latentsync") and "--video_path" in proc.stdout


def test_installed_copy_reads_its_own_configs(installed, tmp_path):
    """Repo-style `configs/...` paths resolve to the package's copy, and the registry names them that way."""
    code = ("from latentsync.config import CONFIG_DIR, resolve_config_path\n"
            "from latentsync.models.registry import known_configs\n"
            "import latentsync\n"
            "print(latentsync.__file__)\n"
            "print(resolve_config_path('configs/unet/stage2.yaml'))\n"
            "print(known_configs('unet'))\n")
    proc = _run_outside_repo(installed, [sys.executable, "-c", code], tmp_path)
    assert proc.returncode == 0, proc.stderr
    package_file, stage2, known = proc.stdout.splitlines()
    assert Path(package_file).is_relative_to(installed)
    assert Path(stage2) == installed / "latentsync" / "configs" / "unet" / "stage2.yaml"
    assert "'configs/unet/stage2.yaml'" in known and "'configs/unet/tiny.yaml'" in known
