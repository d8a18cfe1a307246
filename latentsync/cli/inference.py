"""Lip-sync command line: one video, or a batch file of many.

    python -m scripts.inference --video_path in.mp4 --audio_path speech.wav --video_out_path out.mp4
    latentsync --video_path in.mp4 --audio_path speech.wav --video_out_path out.mp4   # installed copy
    python -m scripts.inference --batch jobs.csv            # CSV (video,audio,output) or JSON list of objects
    python -m scripts.inference --batch jobs.csv --shard_index $SLURM_ARRAY_TASK_ID --num_shards 8
    latentsync prepare in.mp4          # its face pass and VAE moments into the reuse cache, ahead of any audio

Exit codes: 0 success, 2 bad input (missing/unreadable file, no face, wrong checkpoint for the config, bad
option, output path that is an input or a folder, disk full, ...), 1 internal error, 130 / 143 stopped by
SIGINT / SIGTERM (the partial output is removed). Errors are one line; `--verbose` adds the traceback of an
internal error and shows the third-party native log messages (mediapipe, TFLite, absl) that are hidden by
default. In batch mode outputs that already exist are skipped (so a stopped batch resumes where it was),
one failure does not stop the rest, and the exit code is 0 only if every row succeeded (2 if the failures
were all bad inputs). A batch row may also set face_choice, face_index, face_position and occlusion for its video.
Rows run grouped by video: the first run on a video fills the reuse cache (its face pass and VAE moments; see
--cache_dir), the others on it skip that work.
With --shard_index i --num_shards n a job runs only the rows of shard i (a stable hash of the row's output
path, as data processing shards its videos), so n jobs, e.g. a SLURM array, share one batch file.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

from latentsync.api import (
    DTYPES,
    PRESETS,
    SCHEDULERS,
    LipsyncOptions,
    build_pipeline,
    face_coverage_warning,
    lipsync,
    prepare,
)
from latentsync.cli.batch_file import FACE_ROW_OPTIONS, ROW_OPTIONS, read_batch
from latentsync.command_line import (
    EXIT_BAD_INPUT,
    EXIT_INTERNAL,
    EXIT_OK,
    OneLineParser,
    add_verbose_flag,
    classify,
    one_line,
    quiet_console,
    report,
    run_cli,
    warn,
)
from latentsync.faces.detector import FACE_CHOICES
from latentsync.faces.settings import OCCLUSION_MODES
from latentsync.pipelines.frame_schedule import LENGTH_MODES
from latentsync.validation import check_output_path

__all__ = ["EXIT_BAD_INPUT", "EXIT_INTERNAL", "EXIT_OK", "main", "read_batch"]


def parse_args(argv=None) -> argparse.Namespace:
    d = LipsyncOptions()
    p = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--unet_config_path", default=d.unet_config_path)
    p.add_argument("--inference_ckpt_path", default=d.inference_ckpt_path)
    p.add_argument("--video_path")
    p.add_argument("--audio_path")
    p.add_argument("--video_out_path")
    p.add_argument("--batch", type=Path, help="CSV (header video,audio,output) or JSON list of {video, audio, output}")
    p.add_argument("--preset", default="quality", choices=PRESETS,
                   help="quality: the official run (DDIM 20 steps, guidance 1.5, DeepCache); fast: DPM-Solver++ "
                        "6 steps, guidance on the first 3, DeepCache, fp16 on CUDA / bf16 on CPUs with native bf16. "
                        "Flags below override it")
    p.add_argument("--inference_steps", type=int, default=None)
    p.add_argument("--guidance_scale", type=float, default=None)
    p.add_argument("--guidance_fraction", type=float, default=None,
                   help="share of the steps, from the first, that use classifier-free guidance (1 = all, as the "
                        "official); the others run the audio-conditioned half alone, at half the cost")
    p.add_argument("--seed", type=int, default=d.seed, help="-1 for a random seed")
    p.add_argument("--temp_dir", default=None, help="accepted for compatibility; outputs are written atomically")
    p.add_argument("--enable_deepcache", dest="enable_deepcache", action="store_const", const=True, default=None)
    p.add_argument("--disable_deepcache", dest="enable_deepcache", action="store_const", const=False)
    p.add_argument("--vae_path", default=d.vae_path)
    p.add_argument("--whisper_path", default=None)
    p.add_argument("--device", default=d.device)
    p.add_argument("--dtype", default=None, choices=DTYPES)
    p.add_argument("--face_detector", default=d.face_detector)
    p.add_argument("--face_choice", default=None, choices=FACE_CHOICES,
                   help="which face to lip-sync: largest (default, per keyframe), tracked (one person for the whole "
                        "video), speaker (the one whose mouth moves with the video's own audio), index, position")
    p.add_argument("--face_index", default=None, help="--face_choice index: the n-th face from the left (0 = leftmost)")
    p.add_argument("--face_position", default=None, metavar="X,Y",
                   help="--face_choice position: the face whose box centre is nearest to X,Y (pixels)")
    p.add_argument("--occlusion", default=None, choices=OCCLUSION_MODES,
                   help="keep the original pixels where something covers the mouth: auto (hands and objects such as "
                        "microphones, default from configs/faces.yaml), hands (hands only), off (paint over, as the "
                        "official)")
    p.add_argument("--debug_video", default=None, metavar="PATH",
                   help="also write a companion video showing shots, the edited face (box, track id, alignment "
                        "points), the regenerated mouth region, occluders kept and frames passed through")
    p.add_argument("--cache_dir", default=None, metavar="DIR",
                   help="reuse cache across runs: the face pass and VAE moments of each video, so the next run on the "
                        "same video skips them (default: $LATENTSYNC_CACHE_DIR, else the user cache folder; "
                        "size-limited, least recently used first)")
    p.add_argument("--no_cache", action="store_true", help="neither read nor write the reuse cache")
    p.add_argument("--prepare", action="store_true",
                   help="only prepare --video_path for later runs (its face pass and VAE moments into the reuse "
                        "cache); also `latentsync prepare VIDEO`")
    p.add_argument("--length_mode", default=d.length_mode, choices=LENGTH_MODES,
                   help="pingpong / loop / cut_to_shortest: what a longer audio does with the video; silence: a "
                        "longer video is kept whole and the audio padded with silence (table in README)")
    p.add_argument("--shard_index", type=int, default=None, help="--batch: this job's shard (e.g. $SLURM_ARRAY_TASK_ID)")
    p.add_argument("--num_shards", type=int, default=None, help="--batch: total shards (e.g. $SLURM_ARRAY_TASK_COUNT)")
    p.add_argument("--scheduler", default=None, choices=SCHEDULERS)
    p.add_argument("--no_progress", action="store_true", help="hide progress bars")
    add_verbose_flag(p)
    args = p.parse_args(argv)
    check_combinations(p, args)
    return args


def check_combinations(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Flags that only make sense together (or never do), refused with one `error:` line."""
    single = (args.video_path, args.audio_path, args.video_out_path)
    if args.prepare:
        if not args.video_path or args.audio_path or args.video_out_path or args.batch is not None:
            p.error("--prepare (or `latentsync prepare VIDEO`) takes a video only: no audio, output or --batch")
        if args.no_cache:
            p.error("--prepare fills the reuse cache, so it cannot be combined with --no_cache")
        return
    if args.batch is None and not all(single):
        p.error("give --video_path, --audio_path and --video_out_path, or --batch FILE")
    if args.batch is not None and any(single):
        p.error("--batch cannot be combined with --video_path/--audio_path/--video_out_path")
    if args.batch is not None and args.debug_video is not None:
        p.error("--debug_video names one file, so it applies to a single run, not to --batch (every row would "
                "write it); run the row you want to inspect on its own with --debug_video")
    if args.shard_index is not None or args.num_shards is not None:
        if args.batch is None:
            p.error("--shard_index/--num_shards apply to --batch")
        from latentsync.utils.sharding import check_shard

        args.shard_index = 0 if args.shard_index is None else args.shard_index
        args.num_shards = 1 if args.num_shards is None else args.num_shards
        try:
            check_shard(args.shard_index, args.num_shards)
        except ValueError as exc:
            p.error(str(exc))


def options_from_args(args) -> LipsyncOptions:
    """The preset's values, overridden by every flag given explicitly."""
    keys = ("unet_config_path", "inference_ckpt_path", "vae_path", "whisper_path", "inference_steps",
            "guidance_scale", "guidance_fraction", "seed", "device", "dtype", "length_mode", "scheduler",
            "enable_deepcache", "face_detector", "face_choice", "face_index", "face_position", "temp_dir", "preset",
            "occlusion", "debug_video", "cache_dir")
    return LipsyncOptions.from_kwargs(**{k: getattr(args, k) for k in keys}, progress=not args.no_progress,
                                      cache=not args.no_cache)


def run_single(args, options: LipsyncOptions) -> int:
    try:
        result = lipsync(args.video_path, args.audio_path, args.video_out_path, options)
    except Exception as exc:  # noqa: BLE001 - the CLI turns every failure into a message + exit code
        return report(exc, args.verbose)
    print(result.summary())
    warning = face_coverage_warning(result)
    if warning:
        warn(warning)
    return EXIT_OK


def row_options(row: dict, options: LipsyncOptions) -> LipsyncOptions:
    """The run's options with the row's own settings: its face settings (a row that names one replaces all
    three) and its --occlusion, checked as the record is made."""
    own = {k: row[k] for k in ROW_OPTIONS if row.get(k) not in (None, "")}
    if any(k in own for k in FACE_ROW_OPTIONS):
        own.update({k: own.get(k) for k in FACE_ROW_OPTIONS})
    return options.changed(**own)


def shard_rows(rows: list[dict], shard_index: int | None, num_shards: int | None) -> list[dict]:
    """This job's rows: data processing's stable shard hash, here of each row's output path."""
    if not num_shards or num_shards == 1:
        return rows
    from latentsync.utils.sharding import shard_of

    return [row for row in rows if shard_of(str(row["output"]), num_shards) == shard_index]


def run_batch(args, options: LipsyncOptions) -> int:
    try:
        rows = shard_rows(read_batch(args.batch), args.shard_index, args.num_shards)
        bundle = build_pipeline(options)
    except Exception as exc:  # noqa: BLE001
        return report(exc, args.verbose)
    if args.num_shards and args.num_shards > 1:
        print(f"shard {args.shard_index} of {args.num_shards}: {len(rows)} row(s)")
    results, codes = [], []
    for row in sorted(rows, key=lambda r: str(r["video"])):  # a video's rows together: prepared once, then reused
        video, audio, output = row["video"], row["audio"], row["output"]
        start = time.perf_counter()
        try:
            check_output_path(output, (video, audio))  # an output that is an input is an error, not "done"
            if Path(output).exists():
                results.append((output, "skipped (exists)", ""))
                continue
            result = lipsync(video, audio, output, row_options(row, options), pipeline=bundle)
            warning = face_coverage_warning(result)
            if warning:
                warn(warning)
            note = f"; face in {result.frames_with_face} of {result.num_frames} frames" if warning else ""
            results.append((output, "ok", f"{time.perf_counter() - start:.1f}s{note}"))
        except Exception as exc:  # noqa: BLE001 - one bad row must not stop the batch (a stop signal does)
            codes.append(classify(exc))
            if codes[-1] == EXIT_INTERNAL and args.verbose:
                traceback.print_exception(exc)
            results.append((output, "failed", one_line(exc)[:200]))
    print(f"\nbatch summary: {len(results) - len(codes)} of {len(results)} ok, {len(codes)} failed")
    for output, status, detail in results:
        print(f"  {status:18s} {output}  {detail}")
    return max(codes, key=lambda c: c == EXIT_INTERNAL) if codes else EXIT_OK


def run_prepare(args, options: LipsyncOptions) -> int:
    try:
        encoded, already = prepare(args.video_path, options)
    except Exception as exc:  # noqa: BLE001 - the CLI turns every failure into a message + exit code
        return report(exc, args.verbose)
    state = "was prepared already" if already and not encoded else "is prepared"
    print(f"{args.video_path} {state} ({encoded} frames encoded now); later runs on it skip the face pass and the "
          "encoder (--no_cache to run without)")
    return EXIT_OK


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["prepare"]:  # `latentsync prepare VIDEO [flags]`
        argv = ["--prepare", "--video_path", *argv[1:]]
    args = parse_args(argv)
    quiet_console(args.verbose)
    run = run_prepare if args.prepare else run_batch if args.batch else run_single
    return run_cli(lambda: run(args, options_from_args(args)), args.verbose)


if __name__ == "__main__":
    sys.exit(main())
