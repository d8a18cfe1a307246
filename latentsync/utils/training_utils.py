"""Plumbing shared by latentsync/cli/train_syncnet.py and latentsync/cli/train_unet.py.

- configs: the run config merged over configs/training/defaults.yaml, plus command-line overrides;
- processes: an `accelerate` Accelerator (single CPU, one or many GPUs, many nodes; gloo on CPU);
- randomness: every random draw of a step comes from a generator seeded by (seed, rank, step), and every
  sample from (seed, epoch, index), so a resumed run repeats an uninterrupted one without saving RNG states;
- data order: a sharded, epoch-seeded sampler that can skip the batches a resumed run already consumed;
- checkpoints: the official single-file format, written atomically, plus an optional `*.state.pt` sidecar
  (optimizer, LR scheduler, grad scaler) for exact resumption; everything loads with weights_only=True;
- loss log: per-step losses appended to a JSON-lines file next to the checkpoints (not kept in the sidecar);
- charts: PNG line charts of the loss/accuracy histories.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, Sampler

from latentsync.checkpoint import load_torch_file
from latentsync.config import CONFIG_DIR, load_config
from latentsync.errors import InputError

logger = logging.getLogger(__name__)

TRAINING_DEFAULTS = CONFIG_DIR / "training" / "defaults.yaml"
STATE_SUFFIX = ".state.pt"
RANK_SEED_STRIDE = 1_000_003  # per-rank streams must not overlap for nearby seeds


# ---------------------------------------------------------------------------------------------- configs


def load_training_config(path: str | os.PathLike, overrides: Sequence[str] = ()) -> DictConfig:
    """configs/training/defaults.yaml <- the run config <- `key=value` overrides (later wins)."""
    run_config = load_config(path, overrides)
    merged = OmegaConf.merge(OmegaConf.load(TRAINING_DEFAULTS), run_config)
    merged.config_path = str(path)
    return merged


# ---------------------------------------------------------------------------------------------- processes


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


def step_generator(seed: int, rank: int, step: int) -> torch.Generator:
    """CPU generator for the random draws of one training step on one rank (noise, timesteps, VAE samples)."""
    return torch.Generator().manual_seed(int(seed) + RANK_SEED_STRIDE * int(rank) + 7919 * int(step))


def randn(shape, generator: torch.Generator, device, dtype=torch.float32) -> torch.Tensor:
    """Gaussian noise drawn on the CPU (same numbers on every device type) and moved to `device`."""
    return torch.randn(shape, generator=generator, dtype=torch.float32).to(device=device, dtype=dtype)


def make_run_dir(base: str | os.PathLike, config: DictConfig, is_main: bool) -> Path:
    """`<base>/train-<timestamp>` with checkpoints/ and loss_charts/, and the resolved config saved in it."""
    name = "train-" + datetime.datetime.now().strftime("%Y_%m_%d-%H-%M-%S")
    run_dir = Path(base) / name
    if is_main:
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        (run_dir / "loss_charts").mkdir(parents=True, exist_ok=True)
        OmegaConf.save(config, run_dir / "config.yaml")
    return run_dir


# ---------------------------------------------------------------------------------------------- data order


class EpochShardSampler(Sampler[int]):
    """Like DistributedSampler(shuffle, drop_last): a permutation seeded by seed + epoch, split across ranks.

    `set_epoch(epoch, skip)` also skips the first `skip` indices of this rank's share, which is how a resumed
    run picks up in the middle of an epoch without loading (or drawing random numbers for) the skipped samples.
    """

    def __init__(self, size: int, num_replicas: int = 1, rank: int = 0, seed: int = 0, shuffle: bool = True):
        if size < num_replicas:
            raise InputError(f"dataset of {size} samples cannot be split across {num_replicas} processes")
        self.size, self.num_replicas, self.rank = size, num_replicas, rank
        self.seed, self.shuffle = int(seed), shuffle
        self.per_rank = size // num_replicas
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = int(epoch), int(skip)

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        else:
            order = torch.arange(self.size)
        share = order[: self.per_rank * self.num_replicas][self.rank :: self.num_replicas]
        return iter(share[self.skip :].tolist())

    def __len__(self) -> int:
        return self.per_rank - self.skip


def make_loader(dataset, batch_size: int, sampler: Sampler, num_workers: int) -> DataLoader:
    """DataLoader over `sampler` that drops the last partial batch; refuses data too small for one batch."""
    if len(sampler) < batch_size:
        raise InputError(f"{len(dataset)} clips give {len(sampler)} samples per process per epoch, fewer than "
                         f"data.batch_size={batch_size}: lower the batch size or add clips")
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      drop_last=True, pin_memory=False, persistent_workers=False)


def data_position(global_step: int, batches_per_epoch: int, accumulation: int) -> tuple[int, int]:
    """(epoch, batches already consumed in it) after `global_step` optimizer steps."""
    if batches_per_epoch <= 0:
        raise InputError("the training data gives no full batch: lower data.batch_size or add clips")
    consumed = global_step * accumulation
    return consumed // batches_per_epoch, consumed % batches_per_epoch


def training_batches(loader: DataLoader, sampler: EpochShardSampler, dataset, global_step: int, max_steps: int,
                     accumulation: int = 1) -> Iterator[tuple[int, dict]]:
    """(epoch, batch) for the optimizer steps after `global_step` up to `max_steps`, `accumulation` batches each,
    epoch after epoch: a resumed run skips what the earlier one consumed of its epoch, and every epoch the
    sampler and the dataset draw a new order and new windows."""
    epoch, skip = data_position(global_step, len(loader), accumulation)
    left = (max_steps - global_step) * accumulation
    while left > 0:
        sampler.set_epoch(epoch, skip * loader.batch_size)
        dataset.set_epoch(epoch)
        for batch in loader:
            yield epoch, batch
            left -= 1
            if left == 0:
                return
        epoch, skip = epoch + 1, 0


def to_device(batch: dict, device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


# ---------------------------------------------------------------------------------------------- checkpoints


def atomic_save(obj, path: str | os.PathLike) -> Path:
    """torch.save to a temp file in the same folder, then rename: a crash never leaves half a checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def state_path_for(checkpoint_path: str | os.PathLike) -> Path:
    """Where the resume sidecar of `checkpoint-N.pt` lives: `checkpoint-N.state.pt`."""
    path = Path(checkpoint_path)
    return path.with_name(path.stem + STATE_SUFFIX)


def save_training_state(checkpoint_path, optimizer, lr_scheduler=None, scaler=None, **extra) -> Path:
    """Optimizer / scheduler / scaler states next to the checkpoint, plus plain-data extras (trainable names...)."""
    state = {"optimizer": optimizer.state_dict(), **extra}
    if lr_scheduler is not None:
        state["lr_scheduler"] = lr_scheduler.state_dict()
    if scaler is not None:
        state["scaler"] = scaler.state_dict()
    return atomic_save(state, state_path_for(checkpoint_path))


def load_training_state(checkpoint_path, expected_names: Sequence[str]) -> dict | None:
    """The sidecar of a checkpoint if it exists and was made for the same trainable parameters, else None.

    A stage-1 checkpoint resumed by a stage-2 config (different trainable set) gives None: the weights are
    loaded, the optimizer starts fresh; the log says so.
    """
    path = state_path_for(checkpoint_path)
    if not path.is_file():
        logger.info("no training state next to %s: optimizer and LR schedule start fresh", checkpoint_path)
        return None
    state = load_torch_file(path, what="training state")
    if list(state.get("trainable_names", [])) != list(expected_names):
        logger.info("training state %s belongs to a different set of trainable parameters (e.g. a stage-1 run): "
                    "weights loaded, optimizer starts fresh", path)
        return None
    return state


# ---------------------------------------------------------------------------------------------- loss log

LOSS_LOG_NAME = "losses.jsonl"


def loss_log_path(checkpoint_dir: str | os.PathLike) -> Path:
    """The loss log of a run: one JSON object per step, in the folder of its checkpoints."""
    return Path(checkpoint_dir) / LOSS_LOG_NAME


def append_loss_log(path: str | os.PathLike, rows: Sequence[dict]) -> None:
    """Append rows (plain numbers) to a loss log; appending keeps every checkpoint sidecar small."""
    with open(path, "a", encoding="utf-8") as log:
        log.writelines(json.dumps(row) + "\n" for row in rows)


def read_loss_log(path: str | os.PathLike, up_to_step: int | None = None) -> list[dict]:
    """The rows of a loss log ([] if there is none); with `up_to_step` only those a checkpoint of that step
    covers (the run may have logged further). A torn last line (a crash while writing) is left out."""
    path = Path(path)
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").split("\n")[:-1]  # the piece after the last newline is torn or empty
    rows = [json.loads(line) for line in lines if line]
    return [row for row in rows if up_to_step is None or row["step"] <= up_to_step]


# ---------------------------------------------------------------------------------------------- charts


def plot_chart(path: str | os.PathLike, *series: tuple[str, Sequence[float], Sequence[float]],
               ylabel: str = "Loss", title: str | None = None) -> Path:
    """Line chart of (label, steps, values) series saved as PNG (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, steps, values in series:
        if len(steps):
            ax.plot(list(steps), list(values), label=label, marker="." if len(steps) < 30 else None)
    ax.set_xlabel("Step")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def parameter_fingerprint(model: torch.nn.Module) -> torch.Tensor:
    """Per-tensor (sum, sum of squares) of the parameters in float64: equal fingerprints = equal replicas."""
    rows = [torch.stack([p.detach().double().sum(), p.detach().double().pow(2).sum()]) for p in model.parameters()]
    return torch.stack(rows)


def check_ranks_in_sync(accelerator, model: torch.nn.Module) -> float:
    """All processes call this together; returns the largest fingerprint difference between ranks (0 = in sync).

    Raises if the replicas diverged (a broken all-reduce or a rank that skipped a step), which would otherwise
    go unnoticed until the checkpoint of rank 0 turns out to be a different model than the others trained.
    """
    local = parameter_fingerprint(model).to(accelerator.device)
    gathered = accelerator.gather(local[None]).cpu()  # (ranks, tensors, 2)
    spread = float((gathered - gathered[0:1]).abs().max()) if len(gathered) > 1 else 0.0
    if spread != 0.0:
        raise RuntimeError(f"model replicas differ between processes (max fingerprint difference {spread:.3g})")
    return spread


def checkpoint_facts(accelerator, model: torch.nn.Module) -> dict | None:
    """Every process calls this at a checkpoint step (it checks that the replicas agree, `check_ranks_in_sync`);
    the main process gets what the sidecar records about the processes, the others None: they save nothing."""
    spread = check_ranks_in_sync(accelerator, model)
    if not accelerator.is_main_process:
        return None
    return {"num_processes": accelerator.num_processes, "replica_spread": spread}


def finite_or_raise(value: float, step: int, what: str = "loss") -> float:
    """Stop with a clear message instead of training on NaN/inf."""
    if not math.isfinite(value):
        raise FloatingPointError(f"{what} became {value} at step {step}; lower optimizer.lr or check the data")
    return value


def finish_training(accelerator, progress) -> None:
    """The end of a training run on every process: close the bar, wait for the others, end trackers."""
    progress.close()
    accelerator.wait_for_everyone()
    accelerator.end_training()


def check_run_paths(output_dir, resume_path: str | None = None) -> None:
    """Before any model loads: the run folder can be made under `output_dir`, and a resume checkpoint is a
    readable file. Nothing is created here (the run folder appears once everything loaded)."""
    from latentsync.validation import check_input_file, check_writable_folder

    check_writable_folder(output_dir, "data.train_output_dir")
    if resume_path:
        check_input_file(resume_path, "ckpt.resume_ckpt_path", "checkpoint file")


def training_cli(main, description: str, config_flag: str, default_config: str, example: str, argv=None) -> int:
    """Console-script entry of a trainer: `<config_flag> PATH [key=value ...]` -> `main(config)`, under the
    command-line error policy (latentsync/command_line.py): a bad config, override, file list or checkpoint is
    one `error:` line and exit 2, before any run folder is made."""
    from latentsync.command_line import OneLineParser, add_verbose_flag, quiet_console, run_cli

    parser = OneLineParser(description=description,
                           epilog=f"Extra arguments are key=value config overrides, e.g. {example}")
    parser.add_argument(config_flag, default=default_config)
    add_verbose_flag(parser)
    args, overrides = parser.parse_known_args(argv)
    unknown = [o for o in overrides if o.startswith("-")]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    quiet_console(args.verbose, level=logging.INFO, fmt="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def train() -> int:
        main(load_training_config(getattr(args, config_flag.lstrip("-")), overrides))
        return 0

    return run_cli(train, args.verbose)
