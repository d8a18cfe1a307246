"""SyncNet confidence (LSE-C), distance (LSE-D) and AV offset of one video or every video in a folder.

    python -m eval.eval_sync_conf --video_path out.mp4
    python -m eval.eval_sync_conf --videos_dir results/ --json_out results/sync.json

Needs checkpoints/auxiliary/syncnet_v2.model (and sfd_face.pth for the official face detector; without it
a fallback detector is used and named in the output). See docs/evaluation.md. Exit codes as every entry
point (latentsync/command_line.py): 2 and one `error:` line for a bad video path or folder, model, device or
--json_out, checked before the models load; 1 when no video could be scored.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from eval.report import format_table, mean_row, write_json
from eval.settings import DEFAULT_EVAL_CONFIG, load_eval_config
from eval.syncnet.face_tracks import SyncEvalError
from eval.syncnet.video_eval import SyncEvaluator
from eval.video_files import videos_in_folder
from latentsync.command_line import OneLineParser, add_verbose_flag, quiet_console, run_cli
from latentsync.errors import InputError
from latentsync.validation import check_input_file, device_or_default

TABLE_COLUMNS = ("video", "num_tracks", "av_offset", "lse_c", "lse_d", "detector")


def evaluate_paths(evaluator: SyncEvaluator, videos: list[Path]) -> tuple[list[dict], list[dict]]:
    """Score each video; a video that cannot be scored is reported in `errors` and the rest go on."""
    results, errors = [], []
    for video in videos:
        try:
            result = evaluator(video)
        except (SyncEvalError, ValueError) as error:
            errors.append({"video": str(video), "error": str(error)})
            logging.getLogger(__name__).warning("%s", error)
            continue
        results.append(result.as_dict())
    return results, errors


def summarize(results: list[dict], errors: list[dict]) -> dict:
    """JSON payload: per-video results (with per-track scores), failures and the means."""
    mean = mean_row(results, TABLE_COLUMNS, "video") if results else None
    return {"videos": results, "errors": errors, "mean": mean}


def render(summary: dict) -> str:
    rows = [{**r, "video": Path(r["video"]).name} for r in summary["videos"]]
    if len(rows) > 1:
        rows.append(summary["mean"])
    text = format_table(rows, TABLE_COLUMNS) if rows else "no video could be scored"
    for error in summary["errors"]:
        text += f"\nskipped {error['video']}: {error['error']}"
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--video_path", help="one video to score")
    source.add_argument("--videos_dir", help="score every video in this folder")
    parser.add_argument("--initial_model", default=None, help="SyncNet weights (default: checkpoints.syncnet in the config)")
    parser.add_argument("--detector", default=None, choices=("auto", "s3fd", "latentsync", "mediapipe"),
                        help="face detector (default: tracking.detector in the config)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--json_out", default=None, help="also write the results as JSON here")
    parser.add_argument("--config", default=DEFAULT_EVAL_CONFIG, help="evaluation config")
    parser.add_argument("--random_weights", action="store_true",
                        help="smoke test only: skip loading SyncNet weights (the numbers are meaningless)")
    add_verbose_flag(parser)
    parser.add_argument("overrides", nargs="*", help="config overrides such as tracking.min_track=40")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_console(args.verbose, level=logging.INFO, fmt="%(levelname)s %(message)s")
    return run_cli(lambda: evaluate(args), args.verbose)


def input_videos(args) -> list[Path]:
    """The videos to score, checked before any model loads."""
    if args.video_path:
        return [check_input_file(args.video_path, "--video_path", "video file")]
    try:
        return videos_in_folder(args.videos_dir)
    except FileNotFoundError as error:
        raise InputError(f"--videos_dir: {error}") from None


def evaluate(args) -> int:
    from eval.report import check_json_out

    cfg = load_eval_config(args.config, args.overrides)
    device = device_or_default(args.device)
    videos = input_videos(args)
    check_json_out(args.json_out)
    evaluator = SyncEvaluator.from_config(cfg, syncnet_checkpoint=args.initial_model, detector=args.detector,
                                          device=device, load_weights=not args.random_weights)
    results, errors = evaluate_paths(evaluator, videos)
    summary = summarize(results, errors)
    print(render(summary))
    if args.json_out:
        write_json(args.json_out, summary)
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
