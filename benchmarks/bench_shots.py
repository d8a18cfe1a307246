"""Shots on real footage: cut sequences built from the corpus, cuts found, and who is edited in each shot.

    .venv/bin/python benchmarks/bench_shots.py --sequences 8 --seed 0

Each sequence concatenates (ffmpeg, 25 fps, 640x360) shots of 2.4-3.6 s drawn at random windows from
`../shared/media/corpus`:
- `speaker`: one person with their own audio (the speaker),
- `pair`: two people side by side at different sizes, with the audio of one of them (the speaker),
- `dubbed`: a person whose mouth moves, given another clip's speech (nobody visible speaks),
- `still`: lp_src_s32 (a woman turning her head, not talking) under another clip's speech (nobody speaks),
- `faceless`: a generated texture or a heavily blurred crop under another clip's speech (no face).
Measured with `--face_choice speaker` and `largest` (the official), through `resolve_face_choice` and the face pass
(`VideoFaceProcessor`) as the pipeline runs them: true cuts found at their exact frame (by the speaker pass
and by the face pass itself), edited frames (has_face) in shots where nobody visible speaks (goal 0 with
`speaker`), frames of a face track that spans two true shots (landmarks from another shot, goal 0), and shots
whose speaker is edited on the right face (>= 50% of the shot's frames, none on another face). Also the shot
table's scores and null thresholds of every face, for tuning `speaker.null_*` on the whole corpus. A sequence where
`speaker` stops (`NoSpeakerError`: a voice nobody visible speaks) edits nothing; its cuts are the speaker pass's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from latentsync.errors import NoSpeakerError  # noqa: E402
from latentsync.faces.choice import FaceChoice, resolve_face_choice  # noqa: E402
from latentsync.faces.detector import FaceDetector  # noqa: E402
from latentsync.faces.video import VideoFaceProcessor  # noqa: E402
from latentsync.utils.media import VideoWriter, ffmpeg_exe, iter_frames, probe_video, read_audio, write_wav  # noqa: E402
from latentsync.utils.progress import RunProgress  # noqa: E402

W, H, FPS = 640, 360, 25
SPEECH = ["vr_face1.mp4", "vr_face2.mp4", "vr_face3.mp4", "vr_face4.mp4", "vr_face5.mp4", "lp_d20.mp4",
          "st_WDA_KatieHill.mp4", "stt_andrew_clip_1.mp4"]
SILENT = "lp_src_s32.mp4"  # not talking
KINDS = ["speaker", "pair", "dubbed", "still", "faceless"]
TABLE_LINES = ("shot ", "face choice", "warning", "error")  # what the speaker choice said, kept


@dataclass
class Shot:
    kind: str
    frames: int
    region: tuple[int, int] | None = None  # x range of the speaking face on the canvas; None: nobody speaks
    inputs: list = field(default_factory=list)  # ffmpeg input args
    video_filter: str = ""
    audio_input: int = 0


def _audio_of(corpus: Path, name: str) -> Path:
    wav = corpus / name.replace(".mp4", ".wav")
    return wav if wav.is_file() else corpus / name


def _window(rng, corpus: Path, name: str, seconds: float) -> float:
    return float(rng.uniform(0, max(0.0, probe_video(corpus / name).duration - seconds - 0.2)))


SQUARE = "crop='min(iw,ih)':'min(iw,ih)'"


def make_shot(kind: str, rng, corpus: Path, seconds: float) -> Shot:
    frames = int(round(seconds * FPS))
    pick = list(rng.permutation(SPEECH))
    a, b = pick[0], pick[1]
    ta, tb = _window(rng, corpus, a, seconds), _window(rng, corpus, b, seconds)
    clip = ["-ss", f"{ta:.2f}", "-t", f"{seconds + 0.5:.2f}", "-i", str(corpus / a)]
    speech_b = ["-ss", f"{tb:.2f}", "-t", f"{seconds + 0.5:.2f}", "-i", str(_audio_of(corpus, b))]
    if kind == "speaker":
        size = int(rng.choice([360, 280, 200]))
        x = int(rng.integers(0, W - size + 1))
        audio = ["-ss", f"{ta:.2f}", "-t", f"{seconds + 0.5:.2f}", "-i", str(_audio_of(corpus, a))]
        vf = f"[0:v]fps={FPS},{SQUARE},scale={size}:{size},pad={W}:{H}:{x}:{(H - size) // 2}:gray,setsar=1[v]"
        return Shot(kind, frames, (x, x + size), clip + audio, vf, 1)
    if kind == "pair":
        sizes = [int(s) for s in rng.choice([300, 220, 160], size=2, replace=False)]
        tb2 = _window(rng, corpus, b, seconds)
        other = ["-ss", f"{tb2:.2f}", "-t", f"{seconds + 0.5:.2f}", "-i", str(corpus / b)]
        audio = ["-ss", f"{ta:.2f}", "-t", f"{seconds + 0.5:.2f}", "-i", str(_audio_of(corpus, a))]
        left = int(rng.integers(0, 2))  # which side the speaker (a) is on
        order = [0, 1] if left == 0 else [1, 0]
        parts = []
        for slot, k in enumerate(order):
            s = sizes[k]
            parts.append(f"[{k}:v]fps={FPS},{SQUARE},scale={s}:{s},pad={W // 2}:{H}:{(W // 2 - s) // 2}:"
                         f"{(H - s) // 2}:gray,setsar=1[p{slot}]")
        vf = ";".join(parts) + ";[p0][p1]hstack=inputs=2[v]"
        x = 0 if left == 0 else W // 2
        return Shot(kind, frames, (x, x + W // 2), clip + other + audio, vf, 2)
    if kind == "dubbed":
        size = int(rng.choice([360, 280]))
        x = int(rng.integers(0, W - size + 1))
        vf = f"[0:v]fps={FPS},{SQUARE},scale={size}:{size},pad={W}:{H}:{x}:{(H - size) // 2}:gray,setsar=1[v]"
        return Shot(kind, frames, None, clip + speech_b, vf, 1)
    if kind == "still":
        ts = _window(rng, corpus, SILENT, seconds)
        still = ["-ss", f"{ts:.2f}", "-t", f"{seconds + 0.5:.2f}", "-i", str(corpus / SILENT)]
        vf = f"[0:v]fps={FPS},scale={W}:{H},setsar=1[v]"
        return Shot(kind, frames, None, still + speech_b, vf, 1)
    if rng.random() < 0.5:  # faceless: a generated moving texture
        texture = ["-f", "lavfi", "-i", f"life=s={W // 4}x{H // 4}:r={FPS}:ratio=0.2:mold=8:seed={int(rng.integers(1e6))}"]
        vf = f"[0:v]scale={W}:{H}:flags=neighbor,gblur=sigma=3,format=yuv420p,setsar=1[v]"
        return Shot(kind, frames, None, texture + speech_b, vf, 1)
    vf = f"[0:v]fps={FPS},crop=iw/4:ih/4:0:0,scale={W}:{H},gblur=sigma=25,setsar=1[v]"  # a blurred corner
    return Shot(kind, frames, None, clip + speech_b, vf, 1)


def render(shots: list[Shot], out: Path, work: Path) -> None:
    parts = []
    for k, shot in enumerate(shots):
        part = work / f"{out.stem}_{k}.mkv"
        seconds = shot.frames / FPS
        cmd = [ffmpeg_exe(), "-y", "-v", "error", *shot.inputs, "-filter_complex",
               f"{shot.video_filter};[{shot.audio_input}:a]aresample=16000,pan=mono|c0=c0,apad,"
               f"atrim=0:{seconds}[a]", "-map", "[v]", "-map", "[a]", "-frames:v", str(shot.frames),
               "-c:v", "libx264", "-crf", "16", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "pcm_s16le",
               str(part)]
        subprocess.run(cmd, check=True)
        parts.append(part)
    # Joined frame by frame (exact frame counts and audio lengths, whatever the parts' timestamps say).
    samples = []
    for part, shot in zip(parts, shots, strict=True):
        shot.frames = sum(len(chunk) for chunk in iter_frames(str(part), chunk_size=16))
        audio = read_audio(str(part), 16000)[: shot.frames * 16000 // FPS]
        samples.append(np.pad(audio, (0, shot.frames * 16000 // FPS - len(audio))))
    wav = work / f"{out.stem}.wav"
    write_wav(wav, np.concatenate(samples), 16000)
    with VideoWriter(out, FPS, audio_path=wav, crf=16, preset="veryfast") as writer:
        for part in parts:
            for chunk in iter_frames(str(part), chunk_size=16):
                writer.write(chunk)


def face_pass(video: Path, detector: FaceDetector, face_choice: FaceChoice) -> tuple[list, list[int]]:
    """Per frame (has_face, box centre x, track id, bridged), and the cuts the face pass used (given by the
    speaker pass, or found by the face pass itself)."""
    processor = VideoFaceProcessor(detector=detector, face_choice=face_choice)
    out = []
    for a in processor.process(iter_frames(str(video), chunk_size=16, target_fps=FPS), batch_size=16):
        centre = None if a.face_box is None else float((a.face_box[0] + a.face_box[2]) / 2)
        out.append((a.has_face, centre, a.track_id, a.bridged))
    return out, sorted(processor.cuts)


def judge(shots: list[Shot], aligned: list) -> dict:
    bounds = np.cumsum([0] + [s.frames for s in shots])
    shot_of = np.searchsorted(bounds, np.arange(len(aligned)), side="right") - 1
    silent_edited, right_shots, speaker_shots, wrong_face = 0, 0, 0, 0
    for k, shot in enumerate(shots):
        rows = aligned[bounds[k]:bounds[k + 1]]
        edited = [r for r in rows if r[0]]
        if shot.region is None:
            silent_edited += len(edited)
            continue
        speaker_shots += 1
        on = sum(shot.region[0] <= r[1] < shot.region[1] for r in edited)
        wrong_face += len(edited) - on
        right_shots += int(on >= 0.5 * len(rows) and on == len(edited))
    shots_of_track: dict[int, set] = {}
    for i, r in enumerate(aligned):
        if r[0]:
            shots_of_track.setdefault(r[2], set()).add(int(shot_of[i]))
    crossing = sum(1 for r in aligned if r[0] and len(shots_of_track[r[2]]) > 1)
    return {"edited_in_silent_shots": silent_edited, "frames_from_another_shot": crossing,
            "speaker_shots_right": right_shots, "speaker_shots": speaker_shots, "wrong_face_frames": wrong_face,
            "edited": int(sum(r[0] for r in aligned))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=str(Path(__file__).resolve().parents[2] / "shared/media/corpus"))
    parser.add_argument("--sequences", type=int, default=8)
    parser.add_argument("--shots", type=int, default=5, help="shots per sequence")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", default=None, help="folder to keep the built sequences in")
    args = parser.parse_args()
    corpus = Path(args.corpus)
    if not (corpus / SILENT).is_file():
        sys.exit(f"corpus not found: {corpus} (pass --corpus)")
    rng = np.random.default_rng(args.seed)
    totals: dict = {}
    report = {"sequences": []}
    with tempfile.TemporaryDirectory() as tmp, FaceDetector() as detector:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        for n in range(args.sequences):
            kinds = list(rng.permutation(KINDS))[: args.shots]
            shots = [make_shot(k, rng, corpus, float(rng.uniform(2.4, 3.6))) for k in kinds]
            video = work / f"sequence_{n}.mp4"
            render(shots, video, work)
            num_frames = sum(s.frames for s in shots)
            true_cuts = [int(c) for c in np.cumsum([s.frames for s in shots])[:-1]]
            row = {"video": video.name, "shots": [f"{s.kind}:{s.frames}" for s in shots], "true_cuts": true_cuts}
            for choice in ("speaker", "largest"):
                said: list[str] = []
                start = time.perf_counter()
                try:
                    chosen = resolve_face_choice(choice, None, None, str(video), detector, FPS, num_frames,
                                                 RunProgress(False), say=said.append)
                except NoSpeakerError as stop:  # the run stops before its face pass: nothing is edited
                    said.append(f"error: {stop}")
                    chosen = stop.passthrough  # the choice that edits nobody (what the app's preview shows)
                prepass = time.perf_counter() - start
                start = time.perf_counter()
                aligned, found = face_pass(video, detector, chosen)
                faces = time.perf_counter() - start
                result = judge(shots, aligned)
                result.update({"cuts_exact": len(set(found) & set(true_cuts)), "cuts_true": len(true_cuts),
                               "cuts_spurious": len(set(found) - set(true_cuts)), "cuts_found": found,
                               "prepass_s": round(prepass, 2), "face_pass_s": round(faces, 2),
                               "table": [ln for ln in said if ln.startswith(TABLE_LINES)]})
                row[choice] = result
                for key, value in result.items():
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        totals.setdefault(choice, {}).setdefault(key, 0)
                        totals[choice][key] += value
            report["sequences"].append(row)
            print(json.dumps(row), flush=True)
    for choice in totals:
        totals[choice] = {k: round(v, 2) for k, v in totals[choice].items()}
    report["totals"] = totals
    print(json.dumps({"totals": totals}, indent=2))


if __name__ == "__main__":
    main()
