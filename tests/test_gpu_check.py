"""benchmarks/gpu_check.sh, CPU fallback: the same script a GPU machine runs, with tiny models on 16 frames
(at 64 and 128 px: the tiny U-Net attends over every latent pixel, so 256/512 px would take minutes here)."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.helpers import REPO_ROOT


@pytest.mark.slow
def test_gpu_check_cpu_fallback_writes_one_json(tmp_path):
    proc = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--device", "cpu", "--frames", "16", "--models", "tiny",
                           "--sizes", "64", "128", "--out", str(tmp_path)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    tests = report["cuda_tests"]
    assert tests["exit_code"] == 0 and "skipped" in tests["summary"], tests  # no GPU here: the CUDA tests skip
    runs = {(r["resolution"], r["preset"]): r for r in report["runs"]}
    assert set(runs) == {(64, "quality"), (64, "fast"), (128, "quality"), (128, "fast")}
    for (_size, preset), row in runs.items():
        assert row["frames"] == 16 and row["output_fps"] > 0 and row["peak_vram_mib"] is None
        assert f"preset {preset}" in row["settings"] and row["peak_rss_mib_so_far"] > 100
    assert "ddim, 20 steps" in runs[(64, "quality")]["settings"]
    assert "dpmsolver++, 6 steps" in runs[(64, "fast")]["settings"]
    assert report["peak_rss_mib"] >= max(r["peak_rss_mib_so_far"] for r in runs.values())
