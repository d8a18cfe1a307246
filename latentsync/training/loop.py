"""The parts every training loop shares: the processes, the run folder, moving batches, the end of a run.

- processes: an `accelerate` Accelerator (single CPU, one or many GPUs, many nodes; gloo on CPU), seeded by rank;
- the run folder `<data.train_output_dir>/train-<timestamp>`, made only once every input loaded;
- `prepare_for_training`: the model and optimizer handed to the accelerator (and a resumed grad scaler);
- `finish_training`, what every process does after the last step.
"""

from __future__ import annotations

import datetime
import gc
import logging
import os
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

logger = logging.getLogger(__name__)


def make_accelerator(mixed_precision: bool, gradient_accumulation_steps: int = 1, find_unused_parameters=False):
    """Accelerator for whatever `accelerate launch` / `torchrun` (or a plain `python -m`) set up.

    fp16 mixed precision needs CUDA; on a CPU the run stays in fp32 and says so. Without CUDA the accelerator
    is told so (`cpu=True`): several processes started by a launcher then talk over gloo (MULTI_CPU).
    """
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    precision = "no"
    if mixed_precision:
        if torch.cuda.is_available():
            precision = "fp16"
        else:
            logger.info("mixed precision requested but no CUDA device: training in fp32")
    handlers = [DistributedDataParallelKwargs(find_unused_parameters=find_unused_parameters)]
    return Accelerator(
        cpu=not torch.cuda.is_available(),
        mixed_precision=precision,
        gradient_accumulation_steps=int(gradient_accumulation_steps),
        kwargs_handlers=handlers,
    )


def start_process(mixed_precision: bool, seed: int, output_dir, resume_path: str | None = None,
                  gradient_accumulation_steps: int = 1, find_unused_parameters: bool = False):
    """The accelerator of this process, with the global RNG seeded by seed + rank (official); the run paths are
    checked before any model loads."""
    accelerator = make_accelerator(mixed_precision, gradient_accumulation_steps, find_unused_parameters)
    torch.manual_seed(seed + accelerator.process_index)
    check_run_paths(output_dir, resume_path)
    return accelerator


def check_run_paths(output_dir, resume_path: str | None = None) -> None:
    """Before any model loads: the run folder can be made under `output_dir`, and a resume checkpoint is a
    readable file. Nothing is created here (the run folder appears once everything loaded)."""
    from latentsync.validation import check_input_file, check_writable_folder

    check_writable_folder(output_dir, "data.train_output_dir")
    if resume_path:
        check_input_file(resume_path, "ckpt.resume_ckpt_path", "checkpoint file")


def make_run_dir(base: str | os.PathLike, config: DictConfig, is_main: bool) -> Path:
    """`<base>/train-<timestamp>` with checkpoints/ and loss_charts/, and the resolved config saved in it."""
    name = "train-" + datetime.datetime.now().strftime("%Y_%m_%d-%H-%M-%S")
    run_dir = Path(base) / name
    if is_main:
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        (run_dir / "loss_charts").mkdir(parents=True, exist_ok=True)
        OmegaConf.save(config, run_dir / "config.yaml")
    return run_dir


def prepare_for_training(accelerator, model, optimizer, state: dict | None):
    """(model, optimizer) wrapped by the accelerator, and the unwrapped model (what checkpoints save); the grad
    scaler of a resumed run gets its saved state back."""
    model, optimizer = accelerator.prepare(model, optimizer)
    if state is not None and accelerator.scaler is not None and "scaler" in state:
        accelerator.scaler.load_state_dict(state["scaler"])
    return model, optimizer, accelerator.unwrap_model(model)


def to_device(batch: dict, device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def finish_training(accelerator, progress) -> None:
    """The end of a training run on every process: close the bar, wait for the others, drop the accelerator's
    references to the prepared (DDP-wrapped) model, then destroy the process group and end trackers.

    The caller deletes its own reference to the wrapped model first. A DDP reducer that outlives
    `destroy_process_group` tears the gloo group down from its own destructor, which joins gloo's worker threads
    while holding the GIL: a hang at exit, seen under load. Wrapper first, group second is the supported order."""
    progress.close()
    accelerator.wait_for_everyone()
    accelerator.free_memory()
    gc.collect()
    accelerator.end_training()
