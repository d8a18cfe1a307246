"""Make a two-person clip from one talking-face video: the video beside a later part of itself.

    python -m tools.make_two_person_clip VIDEO OUT.mp4 [--seconds 5] [--offset 5] [--crop W:H:X:Y] [--size 480]

Left: the video from t=0; right: the same video from t=offset. Both are cropped (ffmpeg `crop=W:H:X:Y`;
default: the centred square) and scaled to size x size, side by side. The audio is the left part's own, so
only the left person's mouth follows it: `--face_choice speaker` must lip-sync the left face and leave the
right one alone (tests/test_speaker.py, benchmarks/bench_speaker.py).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from latentsync.utils.media import MediaError, ffmpeg_exe, probe_video


def make_two_person_clip(video: str | Path, out: str | Path, seconds: float = 5.0, offset: float = 5.0,
                         crop: str | None = None, size: int = 480) -> Path:
    """Write the side-by-side clip (H.264 + AAC) and return its path. The input is only read."""
    if Path(out).resolve() == Path(video).resolve():
        raise MediaError(f"the output {out} is the input video; choose another name")
    info = probe_video(video)
    if not info.has_audio:
        raise MediaError(f"{video} has no audio track; the left half's own audio is what the clip needs")
    if info.duration < offset + seconds - 1e-6:
        raise MediaError(f"{video} lasts {info.duration:.2f} s; it needs offset + seconds = {offset + seconds:g} s")
    side = min(info.width, info.height)
    crop = crop or f"{side}:{side}:{(info.width - side) // 2}:{(info.height - side) // 2}"
    view = f"crop={crop},scale={size}:{size},setsar=1"
    source = str(Path(video).resolve())
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
           "-t", f"{seconds:.6f}", "-i", source, "-ss", f"{offset:.6f}", "-t", f"{seconds:.6f}", "-i", source,
           "-filter_complex", f"[0:v]{view}[l];[1:v]{view},setpts=PTS-STARTPTS[r];[l][r]hstack=inputs=2[v]",
           "-map", "[v]", "-map", "0:a:0", "-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p",
           "-c:a", "aac", "-t", f"{seconds:.6f}", str(Path(out).resolve())]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise MediaError(f"ffmpeg could not make {out}: {proc.stderr.strip()[-300:]}")
    return Path(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video")
    parser.add_argument("out")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--offset", type=float, default=5.0, help="where the right half starts in the video (s)")
    parser.add_argument("--crop", default=None, help="ffmpeg crop W:H:X:Y applied to both halves")
    parser.add_argument("--size", type=int, default=480, help="side of each (square) half, pixels")
    args = parser.parse_args(argv)
    try:
        print(make_two_person_clip(args.video, args.out, args.seconds, args.offset, args.crop, args.size))
    except MediaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
