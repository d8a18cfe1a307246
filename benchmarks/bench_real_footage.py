"""Real footage: frame timing, shot cuts and occluders measured over ../shared/media/corpus (docs/benchmarks.md).

    python benchmarks/bench_real_footage.py                  # every part
    python benchmarks/bench_real_footage.py --part timing    # timing | shots | occlusion

- timing: for every corpus video and for generated variable-frame-rate / late-start clips, the frames the 25 fps
  output shows (`media.VideoReader(path, target_fps=25)`) against the frames ffmpeg's own `fps=25:start_time=0`
  filter picks (decoded and compared exactly), and how far the former index-based rule (`floor(k * avg_fps / 25)`)
  drifted from them in time.
- shots: benchmarks/bench_shots.py (cut sequences built from the corpus: cuts found, frames edited in shots where
  nobody visible speaks, frames aligned across a cut).
- occlusion: benchmarks/bench_occlusion.py (hand and object composites: occluder pixels kept, mouth still edited).
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from latentsync.utils import media  # noqa: E402

CORPUS = REPO.parent / "shared" / "media" / "corpus"
GENERATED = {  # name: (setpts expression, source rate, seconds, video start offset in seconds)
    "vfr 25 fps then 8.3 fps": ("if(lt(N,25),N/25,1+(N-25)*0.12)/TB", "25", 4, 0.0),
    "vfr jittered around 30 fps": ("(N/30+0.012*sin(N*1.7))/TB", "30", 4, 0.0),
    "29.97 fps, video 0.84 s after audio": ("PTS", "30000/1001", 4, 0.84),
}


def frame_hashes(path: str, video_filter: str) -> list[str]:
    """md5 of every frame ffmpeg delivers through `video_filter` (scaled small: only identity matters)."""
    raw = subprocess.run([media.ffmpeg_exe(), "-v", "error", "-i", path, "-map", "0:v:0", "-vf",
                          f"{video_filter},scale=64:64:flags=neighbor", "-fps_mode", "passthrough", "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    size = 64 * 64 * 3
    return [hashlib.md5(raw[i : i + size]).hexdigest() for i in range(0, len(raw), size)]


def generated_clip(folder: Path, name: str, expression: str, rate: str, seconds: float, offset: float) -> str:
    plain, out = folder / f"plain_{len(name)}.mp4", folder / f"clip_{len(name)}.mp4"
    subprocess.run([media.ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size=160x120:rate={rate}:duration={seconds}", "-vf", f"setpts='{expression}'",
                    "-fps_mode", "vfr", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(plain)], check=True)
    subprocess.run([media.ffmpeg_exe(), "-v", "error", "-y", "-itsoffset", str(offset), "-i", str(plain), "-f",
                    "lavfi", "-i", f"sine=duration={seconds + offset}", "-map", "0:v", "-map", "1:a", "-c:v", "copy",
                    "-c:a", "aac", str(out)], check=True)
    return str(out)


def timing_row(name: str, path: str) -> dict:
    sources = frame_hashes(path, "null")
    expected = frame_hashes(path, "fps=25:start_time=0")
    position = {h: i for i, h in enumerate(sources)}
    info = media.probe_video(path)
    ours = media.frame_map(path, 25, info.num_frames, info.fps)
    times = media.read_frame_times(path)
    chosen = [position.get(h, -1) for h in expected]
    index_rule = np.minimum(np.floor(np.arange(len(expected)) * info.fps / 25 + 1e-6).astype(int), len(sources) - 1)
    drift = [abs(float(times.times[a]) - float(times.times[b])) for a, b in zip(index_rule, chosen, strict=True)
             if b >= 0]
    differ = sum(sources[i] != h for i, h in zip(ours, expected, strict=False)) + abs(len(ours) - len(expected))
    return {"clip": name, "frames": len(expected), "differ": differ, "index_drift_ms": 1000 * max(drift, default=0)}


def run_timing() -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in GENERATED.items():
            rows.append(timing_row(name, generated_clip(Path(tmp), name, *spec)))
    for path in sorted(CORPUS.glob("*.mp4")) + [CORPUS.parent / "demo1_video.mp4"]:
        if path.is_file():
            rows.append(timing_row(path.name, str(path)))
    print("| clip | output frames | frames that differ from ffmpeg's fps=25 | former index rule: max drift |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['clip']} | {row['frames']} | {row['differ']} | {row['index_drift_ms']:.0f} ms |")
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("all", "timing", "shots", "occlusion"), default="all")
    args, rest = parser.parse_known_args(argv)
    if args.part in ("all", "timing"):
        run_timing()
    for part in ("shots", "occlusion"):
        if args.part in ("all", part):
            script = REPO / "benchmarks" / f"bench_{part}.py"
            subprocess.run([sys.executable, str(script), *rest], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
