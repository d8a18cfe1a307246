"""Memory of the occluder masks a run keeps: in memory (before) against on disk (`MaskStore`, now).

    .venv/bin/python benchmarks/bench_mask_store.py --frames 15000 90000

A frame's occluder mask is kept for the whole run (frames shown again, the reuse cache). This bench gives a video
with an occluder in every frame (`--frames`: 15,000 is 10 minutes at 25 fps, 90,000 an hour) and measures, each
way in a child process of its own, the peak resident memory (`ru_maxrss`) after each phase:

1. the face pass keeps every mask (before: `StoredMask`s in a dict; now: `MaskStore`);
2. the run writes the reuse cache's entry (before: every mask's bytes in the entry; now: `store_prepared`, the bytes
   in shards of `--shard_mb`);
3. a later run reads it back (before: the entry and a dict of masks; now: `load_prepared`).

A third way, `none`, is the same video without any occluder (today's code): what the track's per-frame arrays cost.

The masks are feathered capsules (a microphone's shape) moving and changing size from frame to frame, stored as the
track stores them (`StoredMask.of_mask`, at most 128 px a side); their mean stored size is printed next to the
occlusion bench's 3.4 kB (docs/benchmarks.md). Both ways store the same masks and read back the same bytes (checked).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

POOL = 400  # distinct masks, cycled (each kept frame gets its own copy of the bytes)


def feathered_capsule(k: int) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """Frame k's mask: a capsule over a ~110 x 100 px box, feathered, its position and size varying with k."""
    rng = np.random.default_rng(k)
    h, w = int(90 + 30 * rng.random()), int(100 + 30 * rng.random())
    binary = np.zeros((h, w), np.float32)
    x0, y0 = int(w * (0.2 + 0.2 * rng.random())), int(h * 0.1)
    x1, y1 = int(w * (0.5 + 0.3 * rng.random())), int(h * (0.7 + 0.3 * rng.random()))
    cv2.line(binary, (x0, y0), (x1, y1), 1.0, thickness=int(12 + 20 * rng.random()))
    cv2.circle(binary, (x0, y0), int(14 + 10 * rng.random()), 1.0, -1)
    edge = rng.random((h // 4 + 1, w // 4 + 1)).astype(np.float32)  # a ragged edge, as found objects have
    binary *= cv2.resize(edge, (w, h), interpolation=cv2.INTER_LINEAR) > 0.25
    mask = np.clip(cv2.GaussianBlur(binary, (0, 0), 5.0) * 1.5, 0, 1)
    return (400 + k % 7, 600 + k % 5, 400 + k % 7 + w * 3, 600 + k % 5 + h * 3), mask


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(way: str, frames: int, shard_mb: float) -> dict:
    import torch

    from latentsync.faces.prepared import FRAME_ARRAYS, PreparedFaces
    from latentsync.faces.stored_masks import MaskStore, StoredMask
    from latentsync.pipelines.prepared_video import load_prepared, store_prepared
    from latentsync.utils.content_cache import EntryCache

    pool = [StoredMask.of_mask(*feathered_capsule(k)) for k in range(POOL)]
    result = {"way": way, "frames": frames, "mask_kb": float(np.mean([len(m.data) for m in pool])) / 1024,
              "start_mb": maxrss_mb()}
    started = time.perf_counter()
    masks = {} if way == "before" else MaskStore()
    for index in range(frames if way != "none" else 0):
        stored = pool[index % POOL]
        own = StoredMask(stored.box, stored.shape, stored.data[:-1] + stored.data[-1:])  # fresh bytes, as the masker's
        if way == "before":
            masks[index] = own
        else:
            masks.put(index, own)
    result["keep_s"] = time.perf_counter() - started
    result["kept_mb"] = maxrss_mb()

    arrays = {name: np.zeros((frames, *tail), dtype) for name, (dtype, tail) in FRAME_ARRAYS.items()}
    record = PreparedFaces(num_frames=frames, resolution=256, face_size=(256, 256), occlusion="auto", cuts=(),
                           stats={"frames": frames, "with_face": 0, "without_face": frames, "bridged": 0,
                                  "detector_runs": 0},
                           occluders=masks if way == "now" else MaskStore(), **arrays)
    with tempfile.TemporaryDirectory() as folder:
        cache = EntryCache(folder)
        started = time.perf_counter()
        if way == "before":  # the entry held every mask's bytes (PreparedFaces.to_tensors before)
            tensors, meta = record.to_tensors(with_masks=False)
            order = sorted(masks)
            tensors.update({"occluder_index": torch.tensor(order, dtype=torch.int64),
                            "occluder_box": torch.tensor([masks[i].box for i in order], dtype=torch.int64),
                            "occluder_shape": torch.tensor([masks[i].shape for i in order], dtype=torch.int64),
                            "occluder_offsets": torch.tensor(np.concatenate(
                                [[0], np.cumsum([len(masks[i].data) for i in order])]), dtype=torch.int64),
                            "occluder_zlib": torch.from_numpy(np.frombuffer(
                                b"".join(masks[i].data for i in order), np.uint8).copy())})
            cache.put("video", tensors, {"faces": meta})
            del tensors
        else:
            store_prepared(cache, "video", record, {}, shard_bytes=int(shard_mb * 2**20))
        result["write_s"] = time.perf_counter() - started
        result["written_mb"] = maxrss_mb()
        result["cache_mb"] = sum(p.stat().st_size for p in Path(folder).iterdir()) / 2**20
        del record
        if way == "before":
            del masks
        started = time.perf_counter()
        if way == "before":
            entry = cache.get("video")
            offsets = entry.tensors["occluder_offsets"].numpy()
            data = entry.tensors["occluder_zlib"].numpy().tobytes()
            back = {int(i): data[offsets[k]:offsets[k + 1]] for k, i in enumerate(entry.tensors["occluder_index"])}
            del entry, data
            checked = back[frames - 1]
        else:
            back = load_prepared(cache, "video").faces.occluders
            checked = back[frames - 1].data if way == "now" else None
        result["read_s"] = time.perf_counter() - started
        result["read_mb"] = maxrss_mb()
        assert way == "none" or (checked == pool[(frames - 1) % POOL].data and len(back) == frames)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[15000, 90000])
    parser.add_argument("--shard_mb", type=float, default=16.0, help="the reuse cache's shard size (cache.shard_mb)")
    parser.add_argument("--child", nargs=2, metavar=("WAY", "FRAMES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), args.shard_mb)))
        return
    print("| frames (25 fps) | way | mask kB | start MB | after keeping (s) | after writing the cache (s) | "
          "after reading it (s) | cache MB |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for frames in args.frames:
        for way in ("before", "now", "none"):
            out = subprocess.run([sys.executable, __file__, "--child", way, str(frames), "--shard_mb",
                                  str(args.shard_mb)], capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"| {frames:,} ({frames / 25 / 60:.0f} min) | {way} | {r['mask_kb']:.2f} | {r['start_mb']:.0f} | "
                  f"{r['kept_mb']:.0f} (+{r['kept_mb'] - r['start_mb']:.0f}; {r['keep_s']:.1f}) | "
                  f"{r['written_mb']:.0f} (+{r['written_mb'] - r['start_mb']:.0f}; {r['write_s']:.1f}) | "
                  f"{r['read_mb']:.0f} (+{r['read_mb'] - r['start_mb']:.0f}; {r['read_s']:.1f}) | "
                  f"{r['cache_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
