"""The inference process keeps freed memory (glibc): large tensors are reused instead of re-faulted and zeroed."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

from tests.helpers import REPO_ROOT

PROBE = """
import json, resource, sys, torch
from latentsync.utils.allocator import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "keep" else False
for _ in range(2):  # warm-up, as the loop below: the first blocks (and the reduction's buffers) fault in either way
    torch.ones(8 << 20).sum()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(40):
    torch.ones(8 << 20).sum()  # 32 MiB allocated, touched, freed
print(json.dumps({"applied": applied, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def _faults(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, cwd=REPO_ROOT,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_kept_memory_is_reused_without_page_faults():
    default, kept = _faults("default"), _faults("keep")
    assert kept["applied"] and not default["applied"]
    # glibc's default maps every 32 MiB block afresh: 40 x 8192 pages; kept blocks are reused
    assert default["faults"] > 40 * 8192 * 0.9
    assert kept["faults"] < default["faults"] / 5


RELEASE_PROBE = """
import json, os, torch
from latentsync.utils.allocator import keep_freed_memory, release_freed_memory
assert keep_freed_memory()
def rss_mib():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
blocks = [torch.ones(8 << 20) for _ in range(12)]  # 384 MiB, touched
del blocks
kept = rss_mib()
release_freed_memory()
print(json.dumps({"kept": kept, "released": rss_mib()}))
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_release_gives_the_kept_memory_back():
    out = subprocess.run([sys.executable, "-c", RELEASE_PROBE], capture_output=True, text=True, cwd=REPO_ROOT,
                         check=True)
    rss = json.loads(out.stdout.strip().splitlines()[-1])
    assert rss["kept"] - rss["released"] > 300  # MiB: the freed 384 MiB stayed until the release


def test_build_pipeline_applies_the_configured_setting(ckpts, monkeypatch):
    import latentsync.api as api
    from tests.inference_fixtures import tiny_options

    calls = []
    monkeypatch.setattr(api, "keep_freed_memory", lambda: calls.append(True) or True)
    options = api.LipsyncOptions.from_kwargs(**{**tiny_options(ckpts), "progress": False})
    api.build_pipeline(options)
    assert calls == [True]  # configs/inference.yaml allocator.keep_freed_memory: true
