"""Command line: `python -m data_processing --input_dir RAW [options] [section.key=value ...]`.

Exit codes (the command-line policy of every entry point, latentsync/command_line.py): 0 done (every item kept,
dropped for a reason, or already done), 1 some items failed with an error (recorded in the manifest; redo
them with --retry_errors) or an internal error, 2 a bad input or set-up (settings, folders, models, an input
folder without videos, an output that cannot be written or a full disk), 130 / 143 stopped by Ctrl-C /
SIGTERM (worker processes stop with it; finished items are kept, the others are redone on the next run).
"""

from __future__ import annotations

import argparse

from data_processing.pipeline import STEP_NAMES, run_pipeline
from data_processing.settings import DEFAULT_CONFIG, load_settings
from latentsync.command_line import EXIT_INTERNAL, EXIT_OK, OneLineParser, add_verbose_flag, quiet_console, run_cli


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m data_processing",
        description="Raw talking-head videos -> 5-10 s, 25 fps, face-aligned, audio-synced, high-quality clips. "
        "Each step reads one folder and writes the next; re-running resumes where it stopped.",
    )
    parser.add_argument("--input_dir", required=True, help="folder of raw videos (searched recursively; never modified "
                        "unless --delete_broken)")
    parser.add_argument("--output_root", default=None, help="where the step folders go (default: next to input_dir)")
    parser.add_argument("--steps", default=None, help=f"comma-separated subset of: {','.join(STEP_NAMES)} (default: all)")
    parser.add_argument("--num_workers", type=int, default=None, help="worker processes on this machine; models are "
                        "loaded once per worker (default: runtime.num_workers in the config)")
    parser.add_argument("--shard_index", type=int, default=0, help="this job's shard (e.g. $SLURM_ARRAY_TASK_ID)")
    parser.add_argument("--num_shards", type=int, default=1, help="total shards (e.g. $SLURM_ARRAY_TASK_COUNT)")
    parser.add_argument("--resolution", type=int, default=None, help="aligned face size, 256 or 512 (affine.resolution)")
    parser.add_argument("--sync_conf_threshold", type=float, default=None, help="min SyncNet confidence (sync.min_confidence)")
    parser.add_argument("--min_quality", type=float, default=None, help="min HyperIQA score (quality.min_score)")
    parser.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (models.device)")
    parser.add_argument("--delete_broken", action="store_true", help="delete broken input videos instead of only listing them")
    parser.add_argument("--retry_errors", action="store_true", help="redo items whose previous attempt raised an error")
    parser.add_argument("--dry_run", action="store_true", help="list what would be done; write nothing")
    parser.add_argument("--no_progress", action="store_true", help="no progress bars")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="pipeline config (default: %(default)s)")
    add_verbose_flag(parser)
    parser.add_argument("overrides", nargs="*", help="config overrides such as segment.max_seconds=8")
    return parser


def flag_overrides(args: argparse.Namespace) -> list[str]:
    """The dedicated flags expressed as config overrides (they win over positional ones)."""
    pairs = {
        "affine.resolution": args.resolution,
        "sync.min_confidence": args.sync_conf_threshold,
        "quality.min_score": args.min_quality,
        "models.device": args.device,
        "broken.delete": True if args.delete_broken else None,
    }
    return [f"{key}={value}" for key, value in pairs.items() if value is not None]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_console(args.verbose)
    return run_cli(lambda: run(args), args.verbose)


def run(args: argparse.Namespace) -> int:
    cfg = load_settings(args.config, [*args.overrides, *flag_overrides(args)])
    steps = [s.strip() for s in args.steps.split(",") if s.strip()] if args.steps else None
    report = run_pipeline(args.input_dir, cfg, steps=steps, output_root=args.output_root,
                          shard_index=args.shard_index, num_shards=args.num_shards, num_workers=args.num_workers,
                          dry_run=args.dry_run, retry_errors=args.retry_errors, progress=not args.no_progress)
    errors = sum(row.errors for row in report.summary)
    return EXIT_INTERNAL if errors and not report.dry_run else EXIT_OK
