"""The seven steps in order, for one shard of the input: plan (dry run) or run, then summarize."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from data_processing.layout import Layout, list_videos
from data_processing.models import ModelUnavailableError
from data_processing.runner import StepPlan, plan_step, run_step
from data_processing.settings import DataProcessingSettings
from data_processing.steps import step_class
from data_processing.summary import StepSummary, format_table, summarize, write_summary
from latentsync.errors import InputError
from latentsync.utils.sharding import check_shard
from latentsync.validation import check_writable_folder

STEP_NAMES = ("broken", "resample", "shot", "segment", "affine", "sync", "quality")


@dataclass
class PipelineReport:
    layout: Layout
    plans: list[StepPlan]
    summary: list[StepSummary]
    dry_run: bool


def select_steps(requested: list[str] | None) -> list[str]:
    """The steps to run, in pipeline order. A later step reads the manifest of the one before it."""
    if not requested:
        return list(STEP_NAMES)
    unknown = [s for s in requested if s not in STEP_NAMES]
    if unknown:
        raise InputError(f"unknown step(s) {unknown}; steps are: {', '.join(STEP_NAMES)}")
    return [s for s in STEP_NAMES if s in requested]


def run_pipeline(input_dir: str | Path, cfg: DataProcessingSettings, steps: list[str] | None = None, output_root: str | Path | None = None,
                 shard_index: int = 0, num_shards: int = 1, num_workers: int | None = None, dry_run: bool = False,
                 retry_errors: bool = False, progress: bool = True, log=print) -> PipelineReport:
    """Run (or, with dry_run, only plan) the selected steps for one shard. Safe to re-run at any time."""
    check_shard(shard_index, num_shards)
    input_dir = Path(input_dir)
    if not input_dir.is_dir():
        raise InputError(f"--input_dir {input_dir} is {'a file' if input_dir.exists() else 'not found'}; give the "
                         "folder of raw videos")
    layout = Layout.create(input_dir, output_root, cfg)
    chain = list(STEP_NAMES)  # folders and manifests always follow the full chain
    selected = select_steps(steps)
    workers = int(num_workers if num_workers is not None else cfg.runtime.num_workers)
    if workers < 1:
        raise InputError(f"--num_workers must be at least 1, got {workers}")
    check_writable_folder(layout.output_root, "--output_root")  # before anything is made (default: beside input)
    if selected[0] == chain[0] and not list_videos(layout.input_dir, cfg.video_extensions):
        raise InputError(f"no videos ({', '.join(cfg.video_extensions)}) in --input_dir {input_dir} (searched "
                         "recursively, hidden files skipped); nothing to do")
    missing = missing_requirements(selected, cfg)
    if missing and not dry_run:  # before hours of work, not when the step is reached
        raise ModelUnavailableError("cannot run the pipeline:\n  " + "\n  ".join(missing))
    for problem in missing:
        log(f"warning: {problem}")
    plans = []
    upstream = None  # dry run: first selected step that still has work, which later steps must wait for
    for step in selected:
        if dry_run:
            if upstream is None:
                plan = plan_step(chain, step, layout, cfg, shard_index, num_shards, retry_errors)
            else:
                plan = StepPlan(step, layout.input_of(chain, step), layout.outputs[step], waiting_on=upstream)
            if plan.pending or plan.waiting_on:
                upstream = upstream or step
            log(describe_plan(plan, cfg.runtime.max_listed))
        else:
            plan = run_step(chain, step, layout, cfg, shard_index, num_shards, workers, retry_errors, progress)
        plans.append(plan)
    rows = summarize(layout, selected)
    if not dry_run:
        path = write_summary(layout, rows)
        log(format_table(rows))
        log(f"summary written to {path}")
    return PipelineReport(layout, plans, rows, dry_run)


def missing_requirements(steps: list[str], cfg: DataProcessingSettings) -> list[str]:
    """One line per selected step whose models or checkpoints are not available."""
    problems = []
    for step in steps:
        try:
            step_class(step).check_requirements(cfg)
        except Exception as exc:  # noqa: BLE001 - reported together, with the step's name
            problems.append(f"step '{step}': {exc}")
    return problems


def describe_plan(plan: StepPlan, max_listed: int) -> str:
    head = f"[{plan.step}] {plan.input_folder} -> {plan.output_folder}"
    if plan.waiting_on:
        return f"{head}\n  waits for step '{plan.waiting_on}' (its outputs are this step's inputs)"
    lines = [f"{head}\n  {len(plan.pending)} to process, {plan.done} already done, {plan.other_shards} in other shards"]
    lines += [f"    {item}" for item, _ in plan.pending[:max_listed]]
    if len(plan.pending) > max_listed:
        lines.append(f"    ... and {len(plan.pending) - max_listed} more")
    return "\n".join(lines)


__all__ = ["STEP_NAMES", "PipelineReport", "run_pipeline", "select_steps", "format_table"]
