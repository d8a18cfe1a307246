"""Memory of the `speaker` pass on a long video with many shots: what its face tracks cost.

    .venv/bin/python benchmarks/bench_speaker_memory.py --repeat 40

The pass follows every face of the video and keeps, per track, a box, a mouth opening and the lips' motion per frame.
Tracks end at every cut (and when a face is lost for good), so a long video with many shots has many tracks. This
bench builds one cut sequence from `../shared/media/corpus` as `bench_shots.py` does (5 shots of 2.4-3.6 s at
640 x 360: a speaker, two people side by side, a dubbed face, a face that does not talk, a face-less shot), repeats
it `--repeat` times into one file (ffmpeg's concat demuxer, no re-encoding; 40 times is about 10 minutes and 200
shots) and runs `find_speaker` over it in a child process of its own, reporting the peak resident memory
(`ru_maxrss`) before and after the pass, the number of candidates (a face in a shot), the shots and the seconds.
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

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(corpus: Path, work: Path, repeat: int, seed: int) -> Path:
    """One cut sequence of the corpus, repeated `repeat` times without re-encoding."""
    import bench_shots

    from latentsync.utils.media import ffmpeg_exe

    rng = np.random.default_rng(seed)
    kinds = list(rng.permutation(bench_shots.KINDS))
    shots = [bench_shots.make_shot(k, rng, corpus, float(rng.uniform(2.4, 3.6))) for k in kinds]
    once = work / "sequence.mp4"
    bench_shots.render(shots, once, work)
    listing = work / "repeat.txt"
    listing.write_text("".join(f"file '{once}'\n" for _ in range(repeat)))
    long = work / f"sequence_x{repeat}.mp4"
    subprocess.run([ffmpeg_exe(), "-y", "-v", "error", "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy",
                    str(long)], check=True)
    return long


def child(video: str) -> dict:
    from latentsync.faces.detector import FaceDetector
    from latentsync.faces.speaker import find_speaker
    from latentsync.utils.media import probe_video

    frames = probe_video(video).num_frames
    with FaceDetector() as detector:
        detector.detect(np.zeros((360, 640, 3), np.uint8))  # the models loaded before the baseline
        result = {"frames": frames, "start_mb": maxrss_mb()}
        started = time.perf_counter()
        choice = find_speaker(video, detector, 25, frames)
        result.update(seconds=round(time.perf_counter() - started, 1), end_mb=maxrss_mb(), shots=len(choice.shots),
                      candidates=len(choice.candidates),
                      speaking_shots=sum(s.chosen is not None for s in choice.shots))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=str(Path(__file__).resolve().parents[2] / "shared/media/corpus"))
    parser.add_argument("--repeat", type=int, nargs="+", default=[40])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    corpus = Path(args.corpus)
    if not corpus.is_dir():
        sys.exit(f"corpus not found: {corpus} (pass --corpus)")
    print("| repeats | frames | shots | faces in shots | speaker pass s | peak RSS before / after the pass (MB) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in args.repeat:
            video = build(corpus, Path(tmp), repeat, args.seed)
            out = subprocess.run([sys.executable, __file__, "--child", str(video)], capture_output=True, text=True,
                                 check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"| {repeat} | {r['frames']:,} | {r['shots']} | {r['candidates']} | {r['seconds']} | "
                  f"{r['start_mb']:.0f} / {r['end_mb']:.0f} (+{r['end_mb'] - r['start_mb']:.0f}) |", flush=True)


if __name__ == "__main__":
    main()
