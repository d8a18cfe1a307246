"""The `speaker` face choice on real video: the two-person goal, and how often the speaker wins.

    .venv/bin/python benchmarks/bench_speaker.py --video ../shared/media/demo1_video.mp4

1. Goal: the video beside a later part of itself, with the left part's own audio
   (`tools/make_two_person_clip.py`), lip-synced with tiny random models and `--face_choice speaker` (and
   `largest` for comparison): the mean change inside each face's box, and the edited/untouched ratio.
2. Windows: the one person of the video, tracked once; for every pair of windows (3, 4 and 5 s, starting every
   second, not overlapping) the score of the window that matches the audio against the score of the other
   window on the same audio, i.e. a speaker against someone speaking at other times. Reported for the cue the
   library uses (opening and lip motion against the speech band's level), the one before it (opening motion
   against the log RMS) and the mouth opening itself.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import latentsync  # noqa: E402
from latentsync.faces.all_faces import AllFacesTracker, MouthTrack  # noqa: E402
from latentsync.faces.detector import FaceDetector  # noqa: E402
from latentsync.faces.speaker import (  # noqa: E402
    SAMPLE_RATE,
    lagged_correlation,
    smooth,
    speech_band_level,
    speech_envelope,
)
from latentsync.utils.media import iter_frames, probe_video, read_audio  # noqa: E402
from tests.inference_fixtures import decode_all, region_change  # noqa: E402
from tools.make_tiny_checkpoints import make_tiny_checkpoints  # noqa: E402
from tools.make_two_person_clip import make_two_person_clip  # noqa: E402


def goal(video: str, work: Path, detector: FaceDetector) -> dict:
    clip = make_two_person_clip(video, work / "two_people.mp4")
    ckpts = make_tiny_checkpoints(work / "tiny")
    options = dict(unet_config_path="configs/unet/tiny.yaml", inference_ckpt_path=str(ckpts["unet"]),
                   vae_path=str(ckpts["vae"]), whisper_path=str(ckpts["whisper"]), inference_steps=2, device="cpu",
                   progress=False)
    frames_in = decode_all(clip)
    faces = sorted(detector.detect_all(frames_in[0]), key=lambda f: f.box[0])
    result = {"faces": [[round(float(v)) for v in f.box] for f in faces]}
    for choice in ("speaker", "largest"):
        out = work / f"{choice}.mp4"
        start = time.perf_counter()
        latentsync.lipsync(str(clip), str(clip), str(out), face_choice=choice, **options)
        change = [region_change(frames_in, decode_all(out), f.box) for f in faces]
        result[choice] = {"left": round(change[0], 2), "right": round(change[1], 2),
                          "left/right": round(change[0] / max(change[1], 1e-9), 1),
                          "seconds": round(time.perf_counter() - start, 1)}
    return result


def windows(video: str, detector: FaceDetector, cfg) -> dict:
    info = probe_video(video)
    n = info.num_frames
    tracker = AllFacesTracker(detector, n)
    for chunk in iter_frames(video, chunk_size=16, target_fps=25):
        for frame in chunk:
            tracker.update(frame)
    face = max(tracker.tracks(), key=lambda s: s.num_frames)
    k = int(cfg.smooth_frames)
    samples = read_audio(video, SAMPLE_RATE)
    band = smooth(speech_band_level(samples, SAMPLE_RATE, 25, n, cfg.speech_band_hz, float(cfg.envelope_floor)), k)
    rms = smooth(speech_envelope(samples, SAMPLE_RATE, 25, n, float(cfg.envelope_floor)), k)
    opening = face.over(face.opening, 0, n)  # the track's openings over the whole video, NaN where it was lost
    opening_motion = MouthTrack(face.track_id, face.over(face.boxes, 0, n), opening).mouth_motion()
    cues = {"opening + lip motion, speech band (used)": (smooth(face.mouth_motion(0, n), k), band),
            "opening motion, log RMS (before)": (smooth(opening_motion, k), rms),
            "opening, log RMS": (smooth(opening, k), rms)}
    report = {}
    for name, (mouth, envelope) in cues.items():
        wins, margins = [], []
        for length in (75, 100, 125):
            starts = range(0, n - length + 1, 25)
            for s in starts:
                for o in starts:
                    if abs(o - s) < length:
                        continue
                    audio = envelope[s:s + length]

                    def score(m, audio=audio):
                        return lagged_correlation(m, audio, cfg.lag_frames, int(cfg.min_frames))[0]

                    true, false = score(mouth[s:s + length]), score(mouth[o:o + length])
                    wins.append(true > false)
                    margins.append(true - false)
        report[name] = {"pairs": len(wins), "speaker wins": round(float(np.mean(wins)), 2),
                        "median margin": round(float(np.median(margins)), 2)}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", default="../shared/media/demo1_video.mp4")
    args = parser.parse_args()
    with FaceDetector() as detector, tempfile.TemporaryDirectory() as tmp:
        results = {"goal": goal(args.video, Path(tmp), detector),
                   "windows": windows(args.video, detector, detector.config.speaker)}
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
