"""Real footage: frame timing, shot cuts and occluders measured over ../shared/media/corpus (docs/benchmarks.md).

    python benchmarks/bench_real_footage.py                  # every part
    python benchmarks/bench_real_footage.py --part timing    # timing | formats | shots | occlusion

- timing: for every corpus video and for generated variable-frame-rate / late-start clips, the frames the 25 fps
  output shows (`media.VideoReader(path, target_fps=25)`) against the frames ffmpeg's own `fps=25:start_time=0`
  filter picks (decoded and compared exactly), and how far the former index-based rule (`floor(k * avg_fps / 25)`)
  drifted from them in time.
- formats: a corpus clip re-encoded as phones, cameras and video sites deliver it (AV1, VP9, 10-bit HLG HEVC with
  and without a display rotation, BT.709-tagged H.264, ProRes, MPEG-4 part 2, 4:4:4 at an odd size, full range,
  60 fps): whether it opens, through decord or ffmpeg alone, its 25 fps frames against ffmpeg's fps filter as in
  `timing`, and its first frames written back unedited as a player that reads the colour tags shows them; and the
  writer's colours as a player that assumes BT.709 shows them (saturated patches).
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
    """md5 of every frame ffmpeg delivers through `video_filter` (scaled small: only identity matters), interlaced
    frames deinterlaced first as our readers do (`media.DEINTERLACE`; progressive ones pass it untouched)."""
    raw = subprocess.run([media.ffmpeg_exe(), "-v", "error", "-i", path, "-map", media.video_map(path), "-vf",
                          f"{media.DEINTERLACE},{video_filter},scale=64:64:flags=neighbor", "-fps_mode", "passthrough",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
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
    differ = sum(i >= len(sources) or sources[i] != h for i, h in zip(ours, expected, strict=False))
    differ += abs(len(ours) - len(expected))
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


FORMATS = {  # name: (file suffix, ffmpeg output options) for a re-encode of the clip's first 3 s
    "AV1 (mp4)": (".mp4", ["-c:v", "libaom-av1", "-cpu-used", "8", "-crf", "35", "-c:a", "aac"]),
    "VP9 + Opus (webm)": (".webm", ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-b:v", "1M", "-c:a", "libopus"]),
    "HEVC 10-bit HLG (mov)": (".mov", ["-vf", "scale=out_color_matrix=bt2020:out_range=tv,format=yuv420p10le,setparams="
                                       "colorspace=bt2020nc:color_primaries=bt2020:color_trc=arib-std-b67:range=tv",
                                       "-c:v", "libx265", "-x265-params", "log-level=error", "-c:a", "aac"]),
    "H.264 BT.709 tagged (mp4)": (".mp4", ["-vf", "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p,setparams="
                                           "colorspace=bt709:color_primaries=bt709:color_trc=bt709:range=tv",
                                           "-c:v", "libx264", "-c:a", "aac"]),
    "ProRes 422 + PCM (mov)": (".mov", ["-c:v", "prores_ks", "-profile:v", "2", "-c:a", "pcm_s16le"]),
    "MPEG-4 part 2 + MP3 (avi)": (".avi", ["-c:v", "mpeg4", "-q:v", "4", "-c:a", "mp3"]),
    "H.264 4:4:4, 525 x 467 (mkv)": (".mkv", ["-vf", "scale=525:467,setsar=1", "-c:v", "libx264", "-pix_fmt",
                                              "yuv444p", "-c:a", "aac"]),
    "H.264 full range (mp4)": (".mp4", ["-vf", "scale=out_range=pc", "-c:v", "libx264", "-pix_fmt", "yuvj420p",
                                        "-c:a", "aac"]),
    "H.264 60 fps, 48 kHz (mp4)": (".mp4", ["-vf", "fps=60", "-c:v", "libx264", "-c:a", "aac", "-ar", "48000"]),
}


def run_formats(clip: Path) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for k, (name, (suffix, options)) in enumerate(FORMATS.items()):
            paths[name] = str(Path(tmp) / f"format_{k}{suffix}")
            subprocess.run([media.ffmpeg_exe(), "-v", "error", "-y", "-i", str(clip), "-t", "3", *options,
                            paths[name]], check=True)
            rows.append(format_row(name, paths[name]))
        rotated = str(Path(tmp) / "rotated.mov")  # the HLG clip as a phone held upright stores it
        subprocess.run([media.ffmpeg_exe(), "-v", "error", "-y", "-display_rotation", "90", "-i",
                        paths["HEVC 10-bit HLG (mov)"], "-c", "copy", rotated], check=True)
        rows.append(format_row("HEVC 10-bit HLG, display rotation 90 (mov)", rotated))
        covered = str(Path(tmp) / "covered.mkv")  # a download's thumbnail, stored as a video track before the video
        subprocess.run([media.ffmpeg_exe(), "-v", "error", "-y", "-i", paths["H.264 BT.709 tagged (mp4)"],
                        "-frames:v", "1", str(Path(tmp) / "cover.jpg")], check=True)
        subprocess.run([media.ffmpeg_exe(), "-v", "error", "-y", "-i", str(Path(tmp) / "cover.jpg"), "-i",
                        paths["H.264 BT.709 tagged (mp4)"], "-map", "0", "-map", "1", "-c:v:0", "mjpeg", "-c:v:1",
                        "copy", "-c:a", "copy", "-disposition:v:1", "default", covered], check=True)
        rows.append(format_row("H.264 BT.709 after its cover picture (mkv)", covered))
        trimmed = str(Path(tmp) / "trimmed.mp4")  # a trim without re-encoding (phones, `-c copy`): an edit list
        subprocess.run([media.ffmpeg_exe(), "-v", "error", "-y", "-ss", "1.3", "-i", str(clip), "-c", "copy", "-t",
                        "3", trimmed], check=True)
        rows.append(format_row("H.264 cut at 1.3 s without re-encoding (mp4, edit list)", trimmed))
        tagged = paths["H.264 BT.709 tagged (mp4)"]
        for name, suffix, options in (
                ("H.264 remuxed to MPEG-TS (camcorders, TV: starts at 1.4 s)", ".ts", ["-c", "copy"]),
                ("H.264 remuxed without an edit list or audio (mp4: starts 2 frames late)", ".mp4",
                 ["-c", "copy", "-an", "-use_editlist", "0"])):
            remuxed = str(Path(tmp) / f"remuxed_{len(rows)}{suffix}")
            subprocess.run([media.ffmpeg_exe(), "-v", "error", "-y", "-i", tagged, *options, remuxed], check=True)
            rows.append(format_row(name, remuxed))
        fields = "setpts=N/(50*TB),{}tinterlace=mode=interleave_top,setfield=tff"  # 2 frames -> the 2 fields of 1
        for name, suffix, size, options in (
                ("interlaced H.264 in MPEG-TS, top field first (AVCHD, TV)", ".ts", "",
                 ["-c:v", "libx264", "-flags", "+ilme+ildct", "-pix_fmt", "yuv420p", "-c:a", "aac"]),
                ("DV, 720 x 576 interlaced (avi)", ".avi", "scale=720:576,",
                 ["-c:v", "dvvideo", "-pix_fmt", "yuv420p", "-c:a", "pcm_s16le", "-ar", "48000"])):
            interlaced = str(Path(tmp) / f"interlaced_{len(rows)}{suffix}")
            subprocess.run([media.ffmpeg_exe(), "-v", "error", "-y", "-i", str(clip), "-t", "6", "-vf",
                            fields.format(size), *options, interlaced], check=True)
            rows.append(format_row(name, interlaced))
        colours = writer_colours(Path(tmp))
    print("| format | opens with | size | 25 fps frames | differ from ffmpeg's fps=25 | combs, woven / read | written "
          "back, as shown: mean error (p99) |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['format']} | {row['reader']} | {row['size']} | {row['frames']} | {row['differ']} | "
              f"{row['combs_woven']:.2f} / {row['combs_read']:.2f} | "
              f"{row['shown_mean']:.2f} ({row['shown_p99']:.0f}) |")
    print(f"\nWriter colours (saturated patches) as a BT.709 player shows them: max error {colours['bt709_max']}, "
          f"mean {colours['bt709_mean']:.2f} levels; as ffmpeg reads the file: max {colours['tag_max']}.")
    return rows


# How a player shows a frame: by its colour tags (an untagged one as BT.709, as players do with HD video), HDR
# linearised by its transfer and tone-mapped to SDR.
SHOWN = "zscale=t=linear:npl=203,format=gbrpf32le,zscale=p=bt709,tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv"


def format_row(name: str, path: str) -> dict:
    """Opens with what, its 25 fps frames against ffmpeg's, and its first frames read and written back unedited
    (`VideoWriter(like=...)`, as a run writes them) as a tag-reading player shows them, against the input."""
    written = str(Path(path).with_name(Path(path).stem + "_written.mp4"))
    with media.VideoReader(path, target_fps=25) as reader:
        opened = "ffmpeg alone" if reader._reader is None else "decord"
        size = f"{reader.info.width} x {reader.info.height}"
        first = reader.get_frames(range(10))
        with media.VideoWriter(written, 25, like=reader.info) as writer:
            writer.write(first)
    woven = subprocess.run([media.ffmpeg_exe(), "-v", "error", "-i", path, "-map", media.video_map(path), "-frames:v",
                            "10", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    out, inp = shown_frame(written), shown_frame(path)
    h, w = min(out.shape[0], inp.shape[0]), min(out.shape[1], inp.shape[1])  # the writer pads odd sizes by a pixel
    error = np.abs(out[:h, :w] - inp[:h, :w])
    timing = timing_row(name, path)
    return {"format": name, "reader": opened, "size": size, "frames": timing["frames"], "differ": timing["differ"],
            "combs_woven": combs(np.frombuffer(woven, np.uint8).reshape(-1, *first.shape[1:])),
            "combs_read": combs(first), "shown_mean": float(error.mean()), "shown_p99": float(np.percentile(error, 99))}


def combs(frames: np.ndarray) -> float:
    """Mean difference of each line from the mean of its neighbours (green): two fields woven together show combs
    wherever anything moves."""
    green = frames[..., 1].astype(float)
    return float(np.abs(green[:, 1:-1] - 0.5 * (green[:, :-2] + green[:, 2:])).mean())


def shown_frame(path: str) -> np.ndarray:
    info = media.probe_video(path)
    matrix, primaries, transfer = info.colour or ("unknown",) * 3
    assumed = [f"{key}=bt709" for key, tag in (("colorspace", matrix), ("color_primaries", primaries),
                                                 ("color_trc", transfer)) if tag == "unknown"]
    chain = (f"setparams={':'.join(assumed)}," if assumed else "") + SHOWN  # what a player assumes for HD
    raw = subprocess.run([media.ffmpeg_exe(), "-v", "error", "-i", path, "-map", media.video_map(path), "-frames:v",
                          "1", "-vf", chain, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).astype(int).reshape(info.height, info.width, 3)


def writer_colours(folder: Path) -> dict:
    """What `media.VideoWriter` makes of saturated colours, decoded as a BT.709 player and as ffmpeg (the tag)."""
    patches = [(220, 30, 40), (40, 200, 60), (30, 50, 210), (230, 210, 40), (200, 150, 120), (128, 128, 128)]
    frame = np.zeros((96, 64 * len(patches), 3), np.uint8)
    for k, colour in enumerate(patches):
        frame[:, 64 * k : 64 * (k + 1)] = colour
    out = folder / "colours.mp4"
    with media.VideoWriter(out, 25) as writer:
        writer.write(np.stack([frame] * 3))
    inner = (slice(16, 80), np.concatenate([np.arange(64 * k + 16, 64 * k + 48) for k in range(len(patches))]))
    errors = {}
    for key, scale in (("bt709", ["-vf", "scale=in_color_matrix=bt709"]), ("tag", [])):
        raw = subprocess.run([media.ffmpeg_exe(), "-v", "error", "-i", str(out), "-frames:v", "1", *scale, "-f",
                              "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
        shown = np.frombuffer(raw, np.uint8).reshape(frame.shape)[inner].astype(int)
        error = np.abs(shown - frame[inner].astype(int))
        errors[f"{key}_max"], errors[f"{key}_mean"] = int(error.max()), float(error.mean())
    return errors


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("all", "timing", "formats", "shots", "occlusion"), default="all")
    parser.add_argument("--formats_clip", default=str(CORPUS / "vr_face2.mp4"),
                        help="the clip --part formats re-encodes")
    args, rest = parser.parse_known_args(argv)
    if args.part in ("all", "timing"):
        run_timing()
    if args.part in ("all", "formats"):
        run_formats(Path(args.formats_clip))
    for part in ("shots", "occlusion"):
        if args.part in ("all", part):
            script = REPO / "benchmarks" / f"bench_{part}.py"
            subprocess.run([sys.executable, str(script), *rest], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
