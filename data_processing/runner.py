"""Running one step over its items: resume, shard, worker pool, atomic publishing, manifest, progress.

Crash safety comes from the order of operations per item:
  1. the step writes into a private scratch folder,
  2. finished files are renamed into the output folder (atomic on one filesystem),
  3. the item's record is appended (and fsynced) to the shard's manifest.
An item without a record is redone on the next run and its deterministic output names are overwritten,
so killing the process at any point loses and duplicates nothing. Scratch folders of the shard are wiped
when a step starts.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from data_processing.layout import Layout, list_videos
from data_processing.manifest import ManifestWriter, manifest_file, read_manifest
from data_processing.settings import DataProcessingSettings
from data_processing.steps import make_step, step_class
from data_processing.steps.base import DROPPED, ERROR, KEPT, Drop, Outcome, WorkItem, describe_error
from latentsync.errors import OUT_OF_SPACE_ERRNOS, InputError, OutputWriteError, signals_deferred
from latentsync.utils.media import OUT_OF_SPACE_MESSAGES
from latentsync.utils.sharding import shard_of, shard_tag


@dataclass
class StepPlan:
    """What a step would do in this shard."""

    step: str
    input_folder: Path
    output_folder: Path
    pending: list[tuple[str, str]] = field(default_factory=list)  # (item, source) to process, sorted
    done: int = 0  # items of this shard already in the manifest
    other_shards: int = 0  # items that belong to other shards
    waiting_on: str | None = None  # previous step that has not produced this step's inputs yet
    note: str | None = None


def available_items(steps: list[str], step: str, layout: Layout, cfg: DataProcessingSettings) -> tuple[list[tuple[str, str]] | None, str | None]:
    """(item, source) pairs the step can process now, or (None, previous step) when its inputs do not exist yet.

    The first step lists the input folder. Later steps take the outputs of the previous step's *kept*
    records, so half-published outputs of an interrupted item are never read; with no manifest for the
    previous step (running a step on a folder made elsewhere) every video in the input folder is taken.
    """
    index = steps.index(step)
    folder = layout.input_of(steps, step)
    if index > 0:
        previous = steps[index - 1]
        if layout.manifest_dir(previous).is_dir():
            pairs = {}
            for record in read_manifest(layout.manifest_dir(previous)).values():
                if record["status"] == KEPT:
                    for output in record["outputs"]:
                        pairs[output] = record["source"]
            return sorted(pairs.items()), None
        if not folder.is_dir():
            return None, previous
    if not folder.is_dir():
        raise InputError(f"input folder of step '{step}' does not exist: {folder}")
    return [(rel, rel) for rel in list_videos(folder, cfg.video_extensions)], None


def plan_step(steps: list[str], step: str, layout: Layout, cfg: DataProcessingSettings, shard_index: int, num_shards: int,
              retry_errors: bool = False) -> StepPlan:
    plan = StepPlan(step, layout.input_of(steps, step), layout.outputs[step])
    items, waiting_on = available_items(steps, step, layout, cfg)
    if items is None:
        plan.waiting_on = waiting_on
        return plan
    records = read_manifest(layout.manifest_dir(step))
    for item, source in items:
        if shard_of(source, num_shards) != shard_index:
            plan.other_shards += 1
            continue
        record = records.get(item)
        if record is not None and not (retry_errors and record["status"] == ERROR):
            plan.done += 1
        else:
            plan.pending.append((item, source))
    return plan


# ----------------------------------------------------------------------------------------------- one item


def _publish(produced: dict, output_dir: Path) -> None:
    """Move finished files from scratch to their final names."""
    for name, path in sorted(produced.items()):
        if path is None:
            continue
        final = output_dir / name
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, final)


def _out_of_space(exc: BaseException, scratch: Path) -> bool:
    """Whether an item failed because the output cannot grow (full disk, quota, file-size limit) rather than
    because of the item: the exception chain says so, or a 1 MiB probe write in its scratch folder fails.
    Such a failure stops the run; it is never recorded as the item's error (which a re-run would skip)."""
    seen = exc
    while seen is not None:
        if isinstance(seen, OutputWriteError) or (isinstance(seen, OSError) and seen.errno in OUT_OF_SPACE_ERRNOS):
            return True
        if any(m in str(seen) for m in OUT_OF_SPACE_MESSAGES):
            return True
        seen = seen.__cause__ or seen.__context__
    probe = scratch / ".space-probe"
    try:
        scratch.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as handle:
            handle.write(b"\0" * (1 << 20))
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        return error.errno in OUT_OF_SPACE_ERRNOS
    finally:
        probe.unlink(missing_ok=True)
    return False


def execute(step_obj, work: WorkItem) -> dict:
    """Process one item in its scratch folder; returns its manifest record. Never raises for a bad item; a full
    disk raises OutputWriteError. The finished files of a kept item stay in scratch (`_produced`) until
    `commit` publishes them together with the record."""
    started = time.perf_counter()
    work.tmp_dir.mkdir(parents=True, exist_ok=True)
    try:
        try:
            outcome = step_obj.process(work)
        except Drop as drop:
            outcome = Outcome(DROPPED, drop.reason, drop.detail, scores=drop.scores, duration=drop.duration)
        except Exception as exc:  # noqa: BLE001 - one bad video must not stop the run; it is recorded
            if _out_of_space(exc, work.tmp_dir):
                raise OutputWriteError(f"could not write the output of step '{step_obj.name}' in {work.output_dir}: "
                                       "the disk is full or a file-size limit was reached; free some space and "
                                       "run again (finished items are kept, this one is redone)") from None
            last = traceback.extract_tb(exc.__traceback__)[-1]
            detail = f"{type(exc).__name__}: {describe_error(exc, work)} (at {Path(last.filename).name}:{last.lineno})"
            print(f"[{step_obj.name}] error on {work.item}: {detail}", file=sys.stderr)
            outcome = Outcome(ERROR, reason="error", detail=detail)
    except BaseException:
        shutil.rmtree(work.tmp_dir, ignore_errors=True)
        raise
    kept = outcome.status == KEPT
    if not kept:
        shutil.rmtree(work.tmp_dir, ignore_errors=True)
    return {
        "step": step_obj.name,
        "item": work.item,
        "source": work.source,
        "status": outcome.status,
        "reason": outcome.reason,
        "detail": outcome.detail,
        "outputs": sorted(outcome.outputs) if kept else [],
        "scores": outcome.scores,
        "duration": None if outcome.duration is None else round(float(outcome.duration), 4),
        "seconds": round(time.perf_counter() - started, 3),
        "_produced": {k: None if v is None else str(v) for k, v in outcome.outputs.items()} if kept else {},
        "_scratch": str(work.tmp_dir),
    }


def commit(record: dict, output_dir: Path, writer: ManifestWriter) -> dict:
    """Publish a record's files and append the record, as one step that a stop signal cannot split: an output
    never appears without its record (a crash in between leaves files the next run overwrites)."""
    record = dict(record)
    produced, scratch = record.pop("_produced"), record.pop("_scratch")
    with signals_deferred():
        _publish(produced, output_dir)
        writer.write(record)
    shutil.rmtree(scratch, ignore_errors=True)
    return record


# ----------------------------------------------------------------------------------------------- workers

_WORKER_STEP = None


class WorkerSetupError(RuntimeError):
    """A pool worker could not set up its step (e.g. load its model); every task it gets raises this."""


_WORKER_FAILURE: BaseException | None = None


def _init_worker(step_name: str, cfg: DataProcessingSettings, layout: Layout, counter) -> None:
    """Pool initializer: build the step and load its models once for this process.

    A failure is kept and raised by the first task (an initializer that raises would make the pool respawn
    workers forever); the parent then stops the step without recording anything.
    """
    global _WORKER_STEP, _WORKER_FAILURE
    import torch

    _die_with_parent()
    torch.set_num_threads(1)  # one process per core: intra-op threads would only oversubscribe
    with counter.get_lock():
        index = counter.value
        counter.value += 1
    try:
        _WORKER_STEP = make_step(step_name, cfg, worker_index=index, layout=layout)
        _WORKER_STEP.setup()
    except Exception as exc:  # noqa: BLE001 - re-raised in _work
        _WORKER_FAILURE = WorkerSetupError(f"worker {index} could not set up step '{step_name}': {type(exc).__name__}: {exc}")


def _die_with_parent() -> None:
    """A worker ignores Ctrl-C (the parent handles it and stops the pool) and gets SIGTERM when the parent
    dies, even by SIGKILL (Linux), so no worker runs on, or publishes, after its parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - no libc prctl
            pass
        if os.getppid() == 1:  # the parent died before prctl took effect
            os._exit(1)


def _stop_workers(pool) -> None:
    """Stop the pool's workers now (a stop signal or an error in the parent). The workers are terminated one
    by one first; Pool.terminate can then hang on a queue lock a killed worker held (a CPython limitation),
    so it gets a few seconds in a helper thread and is otherwise left behind."""
    for process in list(getattr(pool, "_pool", [])):
        if process.is_alive():
            process.terminate()
    for process in list(getattr(pool, "_pool", [])):
        process.join(timeout=5)
    helper = threading.Thread(target=pool.terminate, name="pool-terminate", daemon=True)
    helper.start()
    helper.join(timeout=5)


def _work(work: WorkItem) -> dict:
    if _WORKER_FAILURE is not None:
        raise _WORKER_FAILURE
    return execute(_WORKER_STEP, work)


def run_step(steps: list[str], step: str, layout: Layout, cfg: DataProcessingSettings, shard_index: int = 0, num_shards: int = 1,
             num_workers: int = 1, retry_errors: bool = False, progress: bool = True) -> StepPlan:
    """Process every pending item of this shard; returns the plan that was executed."""
    plan = plan_step(steps, step, layout, cfg, shard_index, num_shards, retry_errors)
    if plan.waiting_on is not None:
        raise InputError(f"step '{step}' has no input: step '{plan.waiting_on}' has not been run")
    if plan.pending:
        step_class(step).check_requirements(cfg)
    layout.manifest_dir(step).mkdir(parents=True, exist_ok=True)  # marks the step as run, even with nothing to do
    tag = shard_tag(shard_index, num_shards)
    scratch_root = layout.tmp_dir(step, tag)
    if not plan.pending:
        remove_scratch(scratch_root)  # leftovers of a killed run of this shard
        return plan
    shutil.rmtree(scratch_root, ignore_errors=True)  # leftovers of a killed run of this shard
    layout.outputs[step].mkdir(parents=True, exist_ok=True)
    works = [
        WorkItem(item, source, plan.input_folder / item, layout.outputs[step], scratch_root / f"{i:07d}")
        for i, (item, source) in enumerate(plan.pending)
    ]
    writer = ManifestWriter(manifest_file(layout.manifest_dir(step), shard_index, num_shards))
    bar = tqdm(total=len(works), desc=f"{step:>8}", unit="clip", disable=not progress, file=sys.stderr)
    try:
        if num_workers <= 1 or len(works) == 1:
            step_obj = make_step(step, cfg, worker_index=0, layout=layout)
            step_obj.setup()
            results = (execute(step_obj, work) for work in works)
            _drain(results, layout.outputs[step], writer, bar)
        else:
            context = multiprocessing.get_context("spawn")  # no forked torch/OpenMP state in workers
            counter = context.Value("i", 0)
            workers = min(num_workers, len(works))
            pool = context.Pool(workers, initializer=_init_worker, initargs=(step, cfg, layout, counter))
            try:
                _drain(pool.imap_unordered(_work, works), layout.outputs[step], writer, bar)
            except WorkerSetupError:
                # The workers answer every remaining task at once with this error, so let them finish: killing
                # one in the middle of a reply leaves the result queue's lock taken, and CPython's
                # Pool.terminate then waits on it forever (seen once in CI: its task handler stuck in SimpleQueue.put).
                pool.close()
                pool.join()
                raise
            except BaseException:
                _stop_workers(pool)
                raise
            else:
                pool.close()
                pool.join()
    finally:
        bar.close()
        writer.close()
        remove_scratch(scratch_root)
    return plan


def remove_scratch(scratch_root: Path) -> None:
    """The shard's scratch folder, and the output folder's `.tmp/` once no shard uses it."""
    shutil.rmtree(scratch_root, ignore_errors=True)
    try:
        scratch_root.parent.rmdir()
    except OSError:
        pass  # another shard still works in it, or it is gone


def _drain(results, output_dir: Path, writer: ManifestWriter, bar) -> None:
    for record in results:
        record = commit(record, output_dir, writer)
        bar.update(1)
        if record["status"] != KEPT:
            bar.set_postfix_str(f"last drop: {record['reason']}", refresh=False)
