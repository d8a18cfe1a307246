"""Batch lip sync over a test list, then the metrics, in one results table.

    python -m eval.inference_videos --video_fileslist videos.txt --audio_fileslist audios.txt \
        --output_dir results/ --inference_ckpt_path checkpoints/latentsync_unet.pt --real

Pairs videos with audios (shuffled with `--seed` like the original, or line by line with `--pairing zip`),
runs `latentsync.lipsync` for each pair (existing outputs are kept, so a run can be resumed), then scores
every output with the SyncNet protocol (LSE-C, LSE-D, AV offset) and, when I3D is available, the FVD
between the input videos and the outputs. `--real` adds a row with the input videos' own scores. Writes
results.md and results.json in the output folder (atomically). Exit codes as every entry point
(latentsync/command_line.py): 2 and one `error:` line for a bad list, output folder, model or device, checked
before any model loads; 1 when no output could be scored.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
from collections.abc import Callable
from pathlib import Path
from statistics import fmean

from eval.report import format_table, write_json
from latentsync.command_line import OneLineParser, add_verbose_flag, quiet_console, run_cli
from latentsync.errors import InputError
from latentsync.utils.atomic import atomic_write_text
from latentsync.validation import check_input_file, check_writable_folder, device_or_default

logger = logging.getLogger(__name__)

TABLE_COLUMNS = ("video", "lse_c", "lse_d", "av_offset", "fvd", "status")


def read_fileslist(path: str | Path, option: str = "file list") -> list[str]:
    path = check_input_file(path, option, "text file (one path per line)")
    try:
        lines = [line.strip() for line in path.read_bytes().decode("utf-8-sig").splitlines()]
    except UnicodeDecodeError:
        raise InputError(f"{option} {path} is not UTF-8 text; give one path per line") from None
    paths = [line for line in lines if line and not line.startswith("#")]
    if not paths:
        raise InputError(f"{option} {path} lists no files; give one path per line")
    return paths


def pair_inputs(videos: list[str], audios: list[str], seed: int, pairing: str = "shuffle") -> list[tuple[str, str]]:
    """(video, audio) pairs. "shuffle" reproduces the original's seeded shuffle/truncate/shuffle, "zip" keeps order."""
    if pairing == "zip":
        return list(zip(videos, audios, strict=False))
    if pairing != "shuffle":
        raise ValueError(f"pairing must be 'shuffle' or 'zip', got {pairing!r}")
    videos, audios = list(videos), list(audios)
    random.seed(seed)
    random.shuffle(videos)
    random.shuffle(audios)
    count = min(len(videos), len(audios))
    videos, audios = videos[:count], audios[:count]
    random.shuffle(videos)
    random.shuffle(audios)
    return list(zip(videos, audios, strict=True))


def output_name(video: str, audio: str) -> str:
    return f"{Path(video).stem}__{Path(audio).stem}.mp4"


def default_lipsync(options: dict) -> Callable:
    """`latentsync.lipsync` with the models loaded once for the whole batch."""
    from latentsync.api import LipsyncOptions, build_pipeline, lipsync

    run_options = LipsyncOptions.from_kwargs(**options)
    loaded = build_pipeline(run_options)
    return lambda video, audio, out: lipsync(video, audio, out, run_options, pipeline=loaded)


def run_inference(pairs: list[tuple[str, str]], output_dir: Path, lipsync_fn: Callable) -> list[dict]:
    """Generate every pair's output (skipping ones already there). One record per pair with its status."""
    output_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for video, audio in pairs:
        out = output_dir / output_name(video, audio)
        record = {"video": out.name, "source_video": video, "audio": audio, "output": str(out)}
        if out.exists():
            record["status"] = "existing"
        else:
            try:
                lipsync_fn(video, audio, str(out))
                record["status"] = "generated"
            except Exception as error:  # one failed pair must not stop the batch
                logger.warning("lip sync failed for %s + %s: %s", video, audio, error)
                record.update(status="failed", error=str(error))
        records.append(record)
    return records


def score_sync(records: list[dict], evaluator, path_key: str) -> None:
    """Add lse_c / lse_d / av_offset to each record whose `path_key` video can be scored."""
    from eval.syncnet.face_tracks import SyncEvalError

    for record in records:
        if record.get("status") == "failed":
            continue
        try:
            result = evaluator(record[path_key])
        except (SyncEvalError, ValueError) as error:
            record.update(status="unscored", error=str(error))
            continue
        record.update(lse_c=result.lse_c, lse_d=result.lse_d, av_offset=result.av_offset)


def _mean(records: list[dict], key: str):
    values = [r[key] for r in records if isinstance(r.get(key), (int, float))]
    return fmean(values) if values else None


def summarize(records: list[dict], real_records: list[dict] | None, fvd: float | None, fvd_note: str | None) -> dict:
    generated = [r for r in records if "lse_c" in r]
    mean = {"video": "mean", "lse_c": _mean(generated, "lse_c"), "lse_d": _mean(generated, "lse_d"),
            "av_offset": _mean(generated, "av_offset"), "fvd": fvd, "status": f"{len(generated)}/{len(records)} scored"}
    summary = {"videos": records, "mean": mean, "fvd_note": fvd_note}
    if real_records is not None:
        scored = [r for r in real_records if "lse_c" in r]
        summary["real"] = {"video": "real videos", "lse_c": _mean(scored, "lse_c"), "lse_d": _mean(scored, "lse_d"),
                           "av_offset": _mean(scored, "av_offset"), "status": f"{len(scored)}/{len(real_records)} scored"}
        summary["real_videos"] = real_records
    return summary


def render(summary: dict) -> str:
    rows = list(summary["videos"]) + [summary["mean"]] + ([summary["real"]] if "real" in summary else [])
    text = format_table(rows, TABLE_COLUMNS)
    if summary.get("fvd_note"):
        text += f"\nFVD: {summary['fvd_note']}"
    return text


def compute_fvd_between(real: list[str], fake: list[str], i3d=None, device: str = "cpu"):
    """(FVD, note). Skipped with a reason when fewer than 2 videos or no I3D model is available."""
    if len(fake) < 2:
        return None, "skipped: FVD needs at least 2 generated videos"
    from eval.eval_fvd import eval_fvd

    try:
        return eval_fvd(real, fake, i3d=i3d, device=device), None
    except FileNotFoundError as error:
        return None, f"skipped: {error}"
    except ValueError as error:
        return None, f"skipped: {error}"


def evaluate_batch(records: list[dict], evaluator, with_real: bool, i3d=None, device="cpu", fvd: bool = True) -> dict:
    """Sync scores of the outputs (and of the inputs when `with_real`), FVD inputs vs outputs, the summary."""
    score_sync(records, evaluator, "output")
    real_records = None
    if with_real:
        sources = sorted({r["source_video"] for r in records})
        real_records = [{"video": Path(v).name, "path": v} for v in sources]
        score_sync(real_records, evaluator, "path")
    value, note = None, "not computed (--no_fvd)"
    if fvd:
        done = [r for r in records if r.get("status") != "failed"]
        value, note = compute_fvd_between([r["source_video"] for r in done], [r["output"] for r in done], i3d, device)
    return summarize(records, real_records, value, note)


def _not_generated(video: str, audio: str, out: str) -> None:
    raise FileNotFoundError(f"{out} does not exist and --skip_inference was given")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video_fileslist", required=True, help="text file, one input video per line")
    parser.add_argument("--audio_fileslist", required=True, help="text file, one audio (or video) per line")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--seed", type=int, default=42, help="pairing shuffle seed (and lip-sync seed)")
    parser.add_argument("--pairing", choices=("shuffle", "zip"), default="shuffle")
    parser.add_argument("--unet_config_path", default=None)
    parser.add_argument("--inference_ckpt_path", default=None)
    parser.add_argument("--guidance_scale", type=float, default=None)
    parser.add_argument("--inference_steps", type=int, default=None)
    parser.add_argument("--enable_deepcache", action="store_true")
    parser.add_argument("--skip_inference", action="store_true", help="only score outputs already in --output_dir")
    parser.add_argument("--real", action="store_true", help="add a row with the input videos' own scores")
    parser.add_argument("--no_fvd", action="store_true")
    parser.add_argument("--syncnet_model", default=None, help="SyncNet weights (default from configs/eval.yaml)")
    parser.add_argument("--detector", default=None, choices=("auto", "s3fd", "latentsync", "mediapipe"))
    parser.add_argument("--device", default=None)
    add_verbose_flag(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_console(args.verbose, level=logging.INFO, fmt="%(levelname)s %(message)s")
    return run_cli(lambda: evaluate(args), args.verbose)


def evaluate(args) -> int:
    from eval.syncnet.video_eval import SyncEvaluator

    device = device_or_default(args.device)
    output_dir = Path(args.output_dir)
    pairs = pair_inputs(read_fileslist(args.video_fileslist, "--video_fileslist"),
                        read_fileslist(args.audio_fileslist, "--audio_fileslist"), args.seed, args.pairing)
    if output_dir.exists() and not output_dir.is_dir():
        raise InputError(f"--output_dir {output_dir} is a file; give a folder")
    check_writable_folder(output_dir, "--output_dir")
    evaluator = SyncEvaluator.from_config(syncnet_checkpoint=args.syncnet_model, detector=args.detector,
                                          device=device)
    if args.skip_inference:
        lipsync_fn = _not_generated
    else:
        options = {k: v for k, v in {
            "unet_config_path": args.unet_config_path, "inference_ckpt_path": args.inference_ckpt_path,
            "guidance_scale": args.guidance_scale, "inference_steps": args.inference_steps, "seed": args.seed,
            "enable_deepcache": args.enable_deepcache or None}.items() if v is not None}
        lipsync_fn = default_lipsync(options)
    records = run_inference(pairs, output_dir, lipsync_fn)
    summary = evaluate_batch(records, evaluator, args.real, device=device, fvd=not args.no_fvd)
    text = render(summary)
    print(text)
    atomic_write_text(output_dir / "results.md", text + "\n")
    write_json(output_dir / "results.json", summary)
    return 0 if any("lse_c" in r for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
