"""Inference benchmarks (not tests). Results go to docs/benchmarks.md with the command that produced them.

    # peak RSS, busy time per stage and wall time of the tiny-model pipeline on the 1080x1920 demo clip
    # (../shared/media/demo1_video.mp4) looped to 10 s, 60 s and 300 s, each run in its own process
    python benchmarks/bench_inference.py memory --seconds 10 60 300
    # the same with the reuse cache on (the default): per length a first run filling a fresh cache, a second reading it
    python benchmarks/bench_inference.py memory --cache --seconds 10 120
    # seconds per output frame with the real-size stage-2 architecture (random weights), CPU: plain 20-step
    # fp32 DDIM, then the quality and fast presets (one 16-frame chunk at 256 px)
    python benchmarks/bench_inference.py speed --frames 16 --threads 2
    # issue 29 "prepare once, lip-sync many", real-size architecture (random weights), 256 px: (a) a 5 s clip under
    # 60 s of audio (ping-pong) with and without within-run reuse; (b) a first and a second run on the same video
    # with a new audio through the reuse cache
    python benchmarks/bench_inference.py reuse --presets fast quality --video_seconds 5 --audio_seconds 60
    # on a shared machine: each part's two arms at once, one process (and --threads) each, so both see its load
    python benchmarks/bench_inference.py reuse --side_by_side --threads 1 --presets fast --parts a \
        --video_seconds 0.32 --audio_seconds 3.84

`speed` builds the stage2.yaml U-Net (1.27 B parameters; stage2_512.yaml with --resolution 512), an
sd-vae-ft-mse-sized VAE and a Whisper-tiny-sized encoder with random weights (benchmarks/random_models.py), so
the numbers are real-architecture costs without the real checkpoints.
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

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

DEMO_VIDEO = REPO_ROOT.parent / "shared" / "media" / "demo1_video.mp4"
DEMO_AUDIO = REPO_ROOT.parent / "shared" / "media" / "demo1_audio.wav"


def looped_clip(video: Path, audio: Path, seconds: float, folder: Path) -> tuple[Path, Path]:
    """`video` and `audio` repeated to `seconds` (video stream-copied, so a 1080p source stays 1080p)."""
    from latentsync.utils.media import ffmpeg_exe

    out_video, out_audio = folder / f"clip_{seconds:g}s{video.suffix}", folder / f"clip_{seconds:g}s.wav"
    base = [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-stream_loop", "-1"]
    subprocess.run([*base, "-i", str(video), "-t", f"{seconds}", "-map", "0:v:0", "-c", "copy", str(out_video)],
                   check=True)
    subprocess.run([*base, "-i", str(audio), "-t", f"{seconds}", "-ac", "1", "-ar", "16000", str(out_audio)],
                   check=True)
    return out_video, out_audio


def run_once(args) -> None:
    """Child process: one tiny-model run; prints a JSON line with timings and this process's peak RSS."""
    import torch

    torch.set_num_threads(args.threads)
    from latentsync import lipsync
    from tests.inference_fixtures import tiny_options
    from tools.make_demo_clip import make_demo_clip
    from tools.make_tiny_checkpoints import make_tiny_checkpoints

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpts = make_tiny_checkpoints(tmp / "ckpts")
        if args.video == "generated":
            video, audio = make_demo_clip(tmp, seconds=args.child_seconds, width=360, height=480)
        else:
            video, audio = looped_clip(Path(args.video), Path(args.audio), args.child_seconds, tmp)
        cache = dict(cache=True, cache_dir=args.cache_dir) if args.cache_dir else {}
        start = time.perf_counter()
        result = lipsync(str(video), str(audio), str(tmp / "out.mp4"), **tiny_options(ckpts, **cache))
        wall = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    stages = result.seconds_per_stage
    # Frames per busy second. A looped clip is shown forward once, so every output frame passes each stage once.
    fps = {k: round(result.num_frames / v, 1) for k, v in stages.items()
           if v > 0 and k in ("faces", "vae", "denoise", "restore", "write")}
    print(json.dumps({"seconds": args.child_seconds, "run": "second" if result.prepared_from_cache else "first",
                      "frames": result.num_frames, "wall_s": round(wall, 1),
                      "peak_rss_mib": round(peak_mib), "ffmpeg_child_peak_rss_mib": round(children_mib),
                      "stages_s": {k: round(v, 1) for k, v in stages.items()},
                      "busy_sum_s": round(sum(v for k, v in stages.items() if k != "wall"), 1), "stage_fps": fps}))


def memory(args) -> None:
    """Each length in its own process; with `--cache`, two processes per length: the first run fills a fresh reuse
    cache (the default setting's path), the second reads it."""
    rows = []
    for seconds in args.seconds:
        with tempfile.TemporaryDirectory() as cache_dir:
            for _ in range(2 if args.cache else 1):
                rows.append(memory_child(args, seconds, cache_dir if args.cache else None))
                print(rows[-1], flush=True)
    print("\n| clip | run | frames | wall | sum of busy | peak RSS | per stage (busy) | stage fps |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- | --- |")
    for r in rows:
        stages = ", ".join(f"{k} {v}s" for k, v in r["stages_s"].items() if k != "wall")
        fps = ", ".join(f"{k} {v}" for k, v in r["stage_fps"].items())
        run = r["run"] if args.cache else "no cache"
        print(f"| {r['seconds']:g} s | {run} | {r['frames']} | {r['wall_s']} s | {r['busy_sum_s']} s "
              f"| {r['peak_rss_mib']} MiB | {stages} | {fps} |")
    for run in sorted({r["run"] for r in rows}):
        peaks = [r["peak_rss_mib"] for r in rows if r["run"] == run]
        if len(peaks) >= 2:
            print(f"\npeak RSS ratio longest/shortest ({run} runs): {peaks[-1] / peaks[0]:.2f}")


def memory_child(args, seconds: float, cache_dir: str | None) -> dict:
    command = [sys.executable, __file__, "_child", "--child_seconds", str(seconds), "--threads", str(args.threads),
               "--video", str(args.video), "--audio", str(args.audio)]
    out = subprocess.run(command + (["--cache_dir", cache_dir] if cache_dir else []), capture_output=True, text=True,
                         cwd=REPO_ROOT)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if not line:
        sys.exit(out.stderr[-3000:])
    return json.loads(line[-1])


def speed(args) -> None:
    """Seconds per output frame for the real-size architecture: plain 20-step fp32 DDIM, then each preset.

    The fp32 rows run first (quality, then plain): the fast preset casts the shared U-Net/VAE to its half type
    at the end (casting back would round the weights). Each row is compared with the quality row, a numerical-stability
    figure only (random weights carry no quality): the PSNR of the output frames, and the relative L2 deviation of
    the denoised latents (recorded on their way into the VAE decoder), which the pasted-back pixels cannot dilute.
    """
    import resource

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    import latentsync.pipelines.lipsync_pipeline as pipeline_module
    from benchmarks.candidates import option_changes
    from benchmarks.random_models import random_models
    from latentsync.api import LipsyncOptions, build_pipeline, lipsync, resolve_dtype
    from latentsync.pipelines.options import SamplingOptions
    from latentsync.utils.media import VideoReader
    from tools.make_demo_clip import make_demo_clip

    # quality first (the reference of the PSNR column), then plain fp32 DDIM, then the presets that cast weights
    plain = ("plain DDIM, fp32, no DeepCache", LipsyncOptions.from_kwargs(enable_deepcache=False, dtype="fp32"))
    presets = [(f"preset {name}", LipsyncOptions.from_kwargs(preset=name)) for name in args.presets]
    for text in args.candidate:  # the fast preset with some values changed, e.g. an earlier version of it
        presets.append((f"fast with {text}", LipsyncOptions.from_kwargs(preset="fast", **option_changes(text))))
    rows = [r for r in presets if r[0] == "preset quality"] + ([] if args.skip_plain else [plain]) \
        + [r for r in presets if r[0] != "preset quality"]
    denoised = []  # the latents of the current row, chunk by chunk
    decode = pipeline_module.decode_latents

    def recording_decode(vae, latents, **kwargs):
        denoised.append(latents.detach().float().cpu())
        return decode(vae, latents, **kwargs)

    pipeline_module.decode_latents = recording_decode
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        unet, vae, audio_encoder = random_models("real", args.resolution, tmp)
        video, audio = make_demo_clip(tmp, seconds=args.frames / 25, width=360, height=480)
        print("| run | settings | frames | total s | denoise s | vae s | s / output frame | peak RSS | "
              "PSNR vs quality | latent deviation vs quality |\n"
              "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |", flush=True)
        outputs, row_latents = {}, {}
        for name, opts in rows:
            dtype = resolve_dtype(opts.dtype, torch.device("cpu"))
            unet.to(dtype)
            vae.to(dtype)
            loaded = build_pipeline(opts, unet=unet, vae=vae, audio_encoder=audio_encoder,
                                    clip=SamplingOptions(resolution=args.resolution, weight_dtype=dtype))
            out = tmp / f"{len(outputs)}.mp4"
            denoised.clear()
            start = time.perf_counter()
            result = lipsync(str(video), str(audio), str(out), opts, pipeline=loaded, seed=0, progress=False)
            total = time.perf_counter() - start
            if loaded.pipeline.deepcache is not None:
                loaded.pipeline.deepcache.disable()
            with VideoReader(out) as reader:
                outputs[name] = reader.get_frames(range(len(reader))).astype(np.float64)
            row_latents[name] = torch.cat(denoised, dim=2)
            quality = outputs.get("preset quality")
            psnr = deviation = "—"
            if quality is not None and name != "preset quality":
                mse = float(np.mean((outputs[name] - quality) ** 2))
                psnr = f"{10 * np.log10(255 ** 2 / max(mse, 1e-12)):.1f} dB"
                reference = row_latents["preset quality"]
                deviation = f"{float((row_latents[name] - reference).norm() / reference.norm()):.2e}"
            stages = result.seconds_per_stage
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
            print(f"| {name} | {opts.settings_line('cpu', dtype).removeprefix('settings: ')} | {result.num_frames} "
                  f"| {total:.1f} | {stages.get('denoise', 0):.1f} | {stages.get('vae', 0):.1f} "
                  f"| {total / result.num_frames:.2f} | {peak:.1f} GiB | {psnr} | {deviation} |", flush=True)


class EncoderCounter:
    """Counts the images through `vae.encode` and the seconds spent there (wraps the VAE instance's method)."""

    def __init__(self, vae):
        self.frames, self.seconds, self._encode = 0, 0.0, vae.encode
        vae.encode = self._counting

    def _counting(self, images, *args, **kwargs):
        start = time.perf_counter()
        out = self._encode(images, *args, **kwargs)
        self.seconds += time.perf_counter() - start
        self.frames += len(images)
        return out

    def reset(self) -> None:
        self.frames, self.seconds = 0, 0.0


def reuse_inputs(args, folder: Path) -> tuple[Path, Path, Path]:
    """The generated 360x480 face clip of `--video_seconds`, its speech of `--audio_seconds` and a new audio of the
    same length (a synthetic voice of another seed) for the second run."""
    from latentsync.utils.media import write_wav
    from tools.make_demo_clip import make_demo_clip, synthetic_speech

    video, audio = make_demo_clip(folder, seconds=args.video_seconds, width=360, height=480,
                                  audio_seconds=args.audio_seconds)
    new_audio = folder / "new_audio.wav"
    write_wav(new_audio, synthetic_speech(args.audio_seconds, 16000, seed=1), 16000)
    return video, audio, new_audio


def preset_pipeline(name: str, models, resolution: int):
    """(options, loaded pipeline) of a preset on the shared random models, cast to the preset's dtype."""
    import torch

    from latentsync.api import LipsyncOptions, build_pipeline, resolve_dtype
    from latentsync.pipelines.options import SamplingOptions

    unet, vae, audio_encoder = models
    opts = LipsyncOptions.from_kwargs(preset=name, seed=0, progress=False)
    dtype = resolve_dtype(opts.dtype, torch.device("cpu"))
    unet.to(dtype)
    vae.to(dtype)
    loaded = build_pipeline(opts, unet=unet, vae=vae, audio_encoder=audio_encoder,
                            clip=SamplingOptions(resolution=resolution, weight_dtype=dtype))
    return opts, loaded


def timed_run(part: str, label: str, counter: EncoderCounter, video: Path, audio: Path, out: Path, opts,
              loaded) -> dict:
    """One lipsync run; its figures as a dict, also printed as a JSON line."""
    from latentsync.api import lipsync

    counter.reset()
    start, cpu = time.perf_counter(), time.process_time()
    result = lipsync(str(video), str(audio), str(out), opts, pipeline=loaded)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    stages = result.seconds_per_stage
    row = {"part": part, "preset": opts.preset, "run": label, "frames": result.num_frames,
           "encoder_frames": counter.frames, "encoder_s": round(counter.seconds, 1),
           "frames_encoded": result.frames_encoded, "prepared_from_cache": result.prepared_from_cache,
           "face_pass_s": round(stages.get("faces", 0) + stages.get("speaker", 0), 2),
           "vae_s": round(stages.get("vae", 0), 1), "denoise_s": round(stages.get("denoise", 0), 1),
           "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "stages_s": {k: round(v, 2) for k, v in stages.items()}}
    print(json.dumps(row), flush=True)
    return row


def same_video(first: Path, second: Path) -> bool:
    """Whether the two outputs decode to the same frames."""
    from latentsync.utils.media import VideoReader

    with VideoReader(first) as a, VideoReader(second) as b:
        return len(a) == len(b) and bool((a.get_frames(range(len(a))) == b.get_frames(range(len(b)))).all())


def ratio(new: float, old: float) -> str:
    return f"{new / old:.2f}x" if old else "—"


def within_run(opts, loaded, counter, video, audio, folder: Path, rounds: int = 1) -> None:
    """(a) The short clip under the longer audio, with and without within-run reuse (no cache across runs), one
    after the other; over `rounds` in the order on, off, off, on, ... so a drift of the machine's speed falls on
    both arms alike. The table sums the rounds."""
    pipes = {"reuse": loaded, "no_reuse": without_reuse(loaded)}
    opts = opts.changed(cache=False)
    warm_up(opts, loaded, counter, video, folder)
    runs: dict[str, list[dict]] = {"reuse": [], "no_reuse": []}
    for round_ in range(rounds):
        for label in (("reuse", "no_reuse") if round_ % 2 == 0 else ("no_reuse", "reuse")):
            runs[label].append(timed_run("a", label, counter, video, audio, folder / f"{opts.preset}_{label}.mp4",
                                         opts, pipes[label]))
    rows = {label: summed(rows) for label, rows in runs.items()}
    print_within_table(opts.preset, rows, same_video(*(folder / f"{opts.preset}_{label}.mp4" for label in rows)))


def without_reuse(loaded):
    """The same loaded pipeline with within-run reuse off: every output frame encoded again."""
    from dataclasses import replace

    return replace(loaded, clip=replace(loaded.clip, reuse_moments=False))


def summed(rows: list[dict]) -> dict:
    """The rows' seconds added up (their counts are the same in every round)."""
    total = dict(rows[0], rounds=len(rows))
    for key in total:
        if key.endswith("_s") and isinstance(total[key], (int, float)):
            total[key] = round(sum(row[key] for row in rows), 1)
    return total


def warm_up(opts, loaded, counter, video, folder: Path) -> None:
    """One untimed chunk first, so neither timed arm pays the process's first-run costs (oneDNN kernels, allocator
    growth): measured 4-5 % of a 96-frame `fast` run for whichever ran first."""
    from latentsync.utils.media import write_wav
    from tools.make_demo_clip import synthetic_speech

    audio = folder / "warm_up.wav"
    write_wav(audio, synthetic_speech(0.64, 16000, seed=2), 16000)
    timed_run("warm-up", "warm-up", counter, video, audio, folder / "warm_up.mp4", opts, loaded)


def print_within_table(preset: str, rows: dict, identical: bool) -> None:
    print(json.dumps({"part": "a", "preset": preset, "identical": identical}), flush=True)
    with_, without = rows["reuse"], rows["no_reuse"]
    rounds = f", seconds summed over {with_['rounds']} rounds" if with_.get("rounds", 1) > 1 else ""
    print(f"\n(a) preset {preset}: {with_['frames']} output frames{rounds}\n"
          "| within-run reuse | encoder frames | encoder s | VAE s (encode + decode) | denoise s | wall s | CPU s |\n"
          "| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, r in (("on", with_), ("off", without)):
        print(f"| {label} | {r['encoder_frames']} | {r['encoder_s']} | {r['vae_s']} | {r['denoise_s']} "
              f"| {r['wall_s']} | {r['cpu_s']} |")
    print(f"| on / off | {ratio(with_['encoder_frames'], without['encoder_frames'])} "
          f"| {ratio(with_['encoder_s'], without['encoder_s'])} | {ratio(with_['vae_s'], without['vae_s'])} "
          f"| {ratio(with_['denoise_s'], without['denoise_s'])} | {ratio(with_['wall_s'], without['wall_s'])} "
          f"| {ratio(with_['cpu_s'], without['cpu_s'])} |")
    print(f"outputs identical: {'yes' if identical else 'no'}\n", flush=True)


def across_runs(opts, loaded, counter, video, audio, new_audio, folder: Path) -> None:
    """(b) A first and a second run on the same video, the second with a new audio, through a fresh reuse cache."""
    opts = opts.changed(cache=True, cache_dir=str(folder / f"cache_{opts.preset}"))
    first = timed_run("b", "first", counter, video, audio, folder / f"{opts.preset}_first.mp4", opts, loaded)
    second = timed_run("b", "second", counter, video, new_audio, folder / f"{opts.preset}_second.mp4", opts, loaded)
    print_across_table(opts.preset, {"first": first, "second": second})


def print_across_table(preset: str, rows: dict) -> None:
    first, second = rows["first"], rows["second"]
    print(f"\n(b) preset {preset}: {first['frames']} output frames\n"
          "| run | from cache | face pass s | encoder frames | encoder s | VAE s | denoise s | wall s | CPU s |\n"
          "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in (first, second):
        print(f"| {r['run']} | {'yes' if r['prepared_from_cache'] else 'no'} | {r['face_pass_s']} "
              f"| {r['encoder_frames']} | {r['encoder_s']} | {r['vae_s']} | {r['denoise_s']} | {r['wall_s']} "
              f"| {r['cpu_s']} |")
    print(f"| second / first | | {ratio(second['face_pass_s'], first['face_pass_s'])} "
          f"| {ratio(second['encoder_frames'], first['encoder_frames'])} "
          f"| {ratio(second['encoder_s'], first['encoder_s'])} | {ratio(second['vae_s'], first['vae_s'])} "
          f"| {ratio(second['denoise_s'], first['denoise_s'])} | {ratio(second['wall_s'], first['wall_s'])} "
          f"| {ratio(second['cpu_s'], first['cpu_s'])} |\n", flush=True)


ARM_LABELS = {"a": ("reuse", "no_reuse"), "b": ("first", "second")}


def reuse_arm(args) -> None:
    """Child process of `reuse --side_by_side`: one arm of one part. It loads its own models (seeded, so both arms'
    weights are equal), prepares what its arm needs untimed, then waits for `--go` before its timed run, so the two
    arms of a part run at the same time and share whatever else loads the machine."""
    import torch

    torch.set_num_threads(args.threads)
    from benchmarks.random_models import random_models
    from latentsync.api import prepare

    folder = Path(args.folder)
    models = random_models(args.models, args.resolution, folder / f"models_{args.arm}")
    counter = EncoderCounter(models[1])
    opts, loaded = preset_pipeline(args.preset, models, args.resolution)
    audio = args.audio
    if args.arm in ARM_LABELS["a"]:
        opts = opts.changed(cache=False)
        if args.arm == "no_reuse":
            loaded = without_reuse(loaded)
    else:  # both arms warm up alike: the first prepares into a throwaway cache, the second into the one it reads
        warm = "warm" if args.arm == "first" else "timed"
        prepare(args.video, opts.changed(cache=True, cache_dir=str(folder / f"cache_{args.arm}_{warm}")),
                pipeline=loaded)
        opts = opts.changed(cache=True, cache_dir=str(folder / f"cache_{args.arm}_timed"))
        audio = args.new_audio if args.arm == "second" else args.audio
    (folder / f"ready_{args.arm}").touch()
    while not Path(args.go).exists():
        time.sleep(0.2)
    row = timed_run(args.part, args.arm, counter, Path(args.video), Path(audio), folder / f"{args.arm}.mp4", opts,
                    loaded)
    print("ROW " + json.dumps(row), flush=True)
    (folder / f"done_{args.arm}").touch()
    stay_busy_until(lambda: all((folder / f"done_{arm}").exists() for arm in ARM_LABELS[args.part]))


def stay_busy_until(finished) -> None:
    """Keep this arm's core as busy as its run did (bf16 matrix products) until `finished()`: otherwise the arm
    that ends first leaves the other the machine to itself for its last part, and that arm's time looks better
    than it is (measured: the no-reuse arm ran its last 11 % alone)."""
    import torch

    a = torch.randn(1024, 1024, dtype=torch.bfloat16)
    while not finished():
        for _ in range(20):
            a = torch.tanh(a @ a * 0.03)


def side_by_side(args, part: str, preset: str, video: Path, audio: Path, new_audio: Path, folder: Path) -> dict:
    """Both arms of `part` as two child processes of `--threads` each, timed from the same moment."""
    folder.mkdir(parents=True, exist_ok=True)
    go = folder / "go"
    children = {arm: subprocess.Popen(
        [sys.executable, __file__, "_reuse_arm", "--arm", arm, "--part", part, "--preset", preset,
         "--video", str(video), "--audio", str(audio), "--new_audio", str(new_audio), "--folder", str(folder),
         "--go", str(go), "--resolution", str(args.resolution), "--models", args.models,
         "--threads", str(args.threads)], stdout=subprocess.PIPE, text=True) for arm in ARM_LABELS[part]}
    while not all((folder / f"ready_{arm}").exists() for arm in children):
        if any(child.poll() not in (None, 0) for child in children.values()):
            raise SystemExit(f"an arm of part {part} failed before its timed run")
        time.sleep(0.5)
    print(f"part {part}, {preset}: both arms ready, {load_line()}", flush=True)
    go.touch()
    rows = {}
    for arm, child in children.items():
        out, _ = child.communicate()
        if child.returncode:
            raise SystemExit(f"arm {arm} of part {part} failed (exit {child.returncode})")
        rows[arm] = json.loads(next(line for line in out.splitlines() if line.startswith("ROW "))[4:])
    print(f"part {part}, {preset}: both arms done, {load_line()}", flush=True)
    return rows


def load_line() -> str:
    import os

    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def reuse(args) -> None:
    """Issue 29: what reusing the video-only work saves, real-size architecture (random weights).

    fp32 presets run before the ones that cast the shared models to a half type (casting back would round them).
    """
    import torch

    torch.set_num_threads(args.threads)
    from benchmarks.random_models import random_models
    from latentsync.api import LipsyncOptions

    half_last = sorted(args.presets, key=lambda name: LipsyncOptions.from_kwargs(preset=name).dtype != "auto")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        models = None if args.side_by_side else random_models(args.models, args.resolution, tmp)
        counter = None if models is None else EncoderCounter(models[1])
        video, audio, new_audio = reuse_inputs(args, tmp / "inputs")
        if args.side_by_side:
            reuse_side_by_side(args, half_last, video, audio, new_audio, tmp)
            return
        for name in half_last:
            opts, loaded = preset_pipeline(name, models, args.resolution)
            if "a" in args.parts:
                within_run(opts, loaded, counter, video, audio, tmp, args.rounds)
            if "b" in args.parts:
                across_runs(opts, loaded, counter, video, audio, new_audio, tmp)
            if loaded.pipeline.deepcache is not None:
                loaded.pipeline.deepcache.disable()


def reuse_side_by_side(args, presets, video: Path, audio: Path, new_audio: Path, folder: Path) -> None:
    """`reuse --side_by_side`: each part's two arms at once, in two processes (see `reuse_arm`)."""
    for preset in presets:
        if "a" in args.parts:
            rows = side_by_side(args, "a", preset, video, audio, new_audio, folder / f"{preset}_a")
            print_within_table(preset, rows, same_video(*(folder / f"{preset}_a" / f"{arm}.mp4" for arm in rows)))
        if "b" in args.parts:
            print_across_table(preset, side_by_side(args, "b", preset, video, audio, new_audio,
                                                    folder / f"{preset}_b"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("memory")
    m.add_argument("--seconds", type=float, nargs="+", default=[10, 60, 300])
    m.add_argument("--threads", type=int, default=2)
    m.add_argument("--cache", action="store_true",
                   help="the reuse cache on, as by default (a fresh one per length): a first and a second run")
    c = sub.add_parser("_child")
    c.add_argument("--cache_dir")
    c.add_argument("--child_seconds", type=float)
    c.add_argument("--threads", type=int, default=2)
    for q in (m, c):
        q.add_argument("--video", default=str(DEMO_VIDEO),
                       help="clip looped to each length (default: the 1080x1920 demo); 'generated' = a 360x480 "
                            "synthetic clip")
        q.add_argument("--audio", default=str(DEMO_AUDIO), help="audio looped to each length")
    s = sub.add_parser("speed")
    s.add_argument("--frames", type=int, default=16)
    s.add_argument("--presets", nargs="+", default=["quality", "fast"])
    s.add_argument("--resolution", type=int, default=256, choices=[256, 512], help="512: the LatentSync 1.6 U-Net")
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--skip_plain", action="store_true", help="leave out the plain 20-step fp32 DDIM row")
    s.add_argument("--candidate", action="append", default=[], metavar="KEY=VALUE,...",
                   help="also time the fast preset with these options changed, e.g. "
                        "inference_steps=10,guidance_fraction=1 (repeatable)")
    r = sub.add_parser("reuse")
    r.add_argument("--presets", nargs="+", default=["fast", "quality"])
    r.add_argument("--video_seconds", type=float, default=5.0, help="the generated face clip's length")
    r.add_argument("--audio_seconds", type=float, default=60.0, help="the audio's length (ping-pong over the clip)")
    r.add_argument("--parts", nargs="+", default=["a", "b"], choices=["a", "b"],
                   help="a: with/without within-run reuse; b: first/second run through the reuse cache")
    r.add_argument("--resolution", type=int, default=256, choices=[256, 512])
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--models", default="real", choices=["real", "tiny"], help="tiny: a quick check of the script")
    r.add_argument("--rounds", type=int, default=1,
                   help="part (a) one after the other: repeat both arms, in the order on, off, off, on, ...")
    r.add_argument("--side_by_side", action="store_true",
                   help="run each part's two arms at once, in two processes of --threads each, so both share the "
                        "machine's load (the way to compare them on a shared machine)")
    a = sub.add_parser("_reuse_arm")
    for name in ("arm", "part", "preset", "video", "audio", "new_audio", "folder", "go", "models"):
        a.add_argument(f"--{name}")
    a.add_argument("--resolution", type=int, default=256)
    a.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    {"memory": memory, "_child": run_once, "speed": speed, "reuse": reuse, "_reuse_arm": reuse_arm}[args.cmd](args)


if __name__ == "__main__":
    main()
