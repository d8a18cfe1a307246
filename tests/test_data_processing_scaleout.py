"""Data-processing scale-out and crash safety: shards run side by side, a worker pool, and a pipeline killed
mid-step then resumed, each compared with one uninterrupted run (outputs byte for byte, manifests record for
record). Steps 1-4 only: they exercise every mechanism (the model steps share the same runner).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from data_processing import run_pipeline
from data_processing.manifest import iter_records
from data_processing.settings import load_settings
from latentsync.utils.sharding import shard_of
from tests import data_processing_fixtures as fx
from tests.helpers import REPO_ROOT

STEPS = ["broken", "resample", "shot", "segment"]
FOLDERS = ["resampled", "shot", "segmented"]


def cli(root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "data_processing", "--input_dir", str(root / "raw"), "--steps", ",".join(STEPS),
            "--no_progress", *extra]


def outputs(root: Path) -> dict[str, str]:
    """Every published file (relative path -> md5); hidden scratch folders excluded."""
    found = {}
    for folder in FOLDERS:
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts):
                found[path.relative_to(root).as_posix()] = hashlib.md5(path.read_bytes()).hexdigest()
    return found


def leftovers(root: Path) -> list[str]:
    """Partial or scratch files a crash could leave behind (none may survive a completed run)."""
    return [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()
            and ("partial" in p.name or ".tmp" in p.relative_to(root).parts)]


def manifest_lines(root: Path) -> dict[str, list[dict]]:
    """step -> all records (every line of every shard file), with the timing field removed."""
    result = {}
    for step in STEPS:
        rows = [{k: v for k, v in r.items() if k != "seconds"} for r in iter_records(root / "manifests" / step)]
        for row in rows:
            assert str(root) not in json.dumps(row), f"absolute path in the manifest: {row}"
        result[step] = sorted(rows, key=lambda r: r["item"])
    return result


@pytest.fixture(scope="module")
def reference(raw_dir, tmp_path_factory):
    """One uninterrupted, single-process run."""
    root = tmp_path_factory.mktemp("reference")
    shutil.copytree(raw_dir, root / "raw")
    run_pipeline(root / "raw", load_settings(), steps=STEPS, progress=False, log=lambda *_: None)
    return root


def wait_for_records(step_dir: Path, count: int, proc: subprocess.Popen, timeout: float = 120.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = sum(1 for _ in iter_records(step_dir))
        if lines >= count:
            return lines
        if proc.poll() is not None:
            raise AssertionError(f"pipeline finished (rc {proc.returncode}) before {step_dir.name} had {count} records")
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {count} records in {step_dir}")


def test_killed_twice_and_resumed_equals_an_uninterrupted_run(raw_dir, reference, tmp_path):
    shutil.copytree(raw_dir, tmp_path / "raw")
    # Kill -9 the whole process group (as a node failure would) in the middle of two different steps.
    for step, after in (("shot", 2), ("segment", 3)):
        proc = subprocess.Popen(cli(tmp_path), cwd=REPO_ROOT, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            seen = wait_for_records(tmp_path / "manifests" / step, after, proc)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        total = len(fx.FIXTURES) - 2 if step == "shot" else 8
        assert seen < total, f"the {step} step was not interrupted"
    finished = subprocess.run(cli(tmp_path), cwd=REPO_ROOT, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr[-2000:]

    assert outputs(tmp_path) == outputs(reference)
    assert leftovers(tmp_path) == []
    resumed, uninterrupted = manifest_lines(tmp_path), manifest_lines(reference)
    for step in STEPS:
        counts = Counter(r["item"] for r in resumed[step])
        assert max(counts.values()) == 1, f"{step}: items recorded twice: {[k for k, v in counts.items() if v > 1]}"
        assert resumed[step] == uninterrupted[step]


def test_rerunning_a_finished_pipeline_does_nothing(reference):
    before = outputs(reference), manifest_lines(reference)
    report = run_pipeline(reference / "raw", load_settings(), steps=STEPS, progress=False, log=lambda *_: None)
    assert all(not plan.pending for plan in report.plans)
    assert (outputs(reference), manifest_lines(reference)) == before


def test_two_shards_side_by_side_equal_one_run(raw_dir, reference, tmp_path):
    shutil.copytree(raw_dir, tmp_path / "raw")
    # Like a SLURM array of 2 tasks sharing one filesystem; shard 0 also uses a pool of 2 worker processes.
    jobs = [subprocess.Popen(cli(tmp_path, "--num_shards", "2", "--shard_index", str(i),
                                 "--num_workers", "2" if i == 0 else "1"),
                             cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for i in range(2)]
    for job in jobs:
        _, err = job.communicate(timeout=300)
        assert job.returncode == 0, err[-2000:]

    assert outputs(tmp_path) == outputs(reference)
    assert manifest_lines(tmp_path) == manifest_lines(reference)
    for step in STEPS:
        files = sorted((tmp_path / "manifests" / step).glob("*.jsonl"))
        assert [f.name for f in files] == [f"shard-0000{i}-of-00002.jsonl" for i in range(2)]
        for index, path in enumerate(files):
            for line in path.read_text().splitlines():
                assert shard_of(json.loads(line)["source"], 2) == index  # each shard did only its own videos


def test_a_worker_that_cannot_load_its_model_stops_the_step_without_records(tmp_path):
    for folder in ("raw", "av_synced_3"):
        (tmp_path / folder).mkdir()
    for name in ("a.mp4", "b.mp4"):
        fx.aligned_like_clip(tmp_path / "av_synced_3" / name, seconds=1.0)
    cfg = load_settings(overrides=["models.hyperiqa.factory=tests.data_processing_fixtures:unbuildable_model"])
    with pytest.raises(RuntimeError, match="could not set up step 'quality'.*cannot build this model here"):
        run_pipeline(tmp_path / "raw", cfg, steps=["quality"], num_workers=2, progress=False, log=lambda *_: None)
    assert list(iter_records(tmp_path / "manifests" / "quality")) == []
    assert not list((tmp_path / "high_visual_quality").glob("*.mp4"))
