"""Accuracy of a trained StableSyncNet on the validation split of a processed dataset.

    python -m eval.eval_syncnet_acc --config_path configs/syncnet/syncnet_16_pixel_attn.yaml \
        ckpt.inference_ckpt_path=checkpoints/stable_syncnet.pt

Reads `data.val_data_dir` / `data.val_fileslist`, scores `data.num_val_samples` pairs (half in sync, half
not, drawn by the training dataset) and prints the accuracy with a confusion table. When there are fewer
validation clips than samples, the split is gone through again with the next epoch's random windows and
pairings (as training validates), so no sample is scored twice; the output says from how many clips and
passes the samples came. Exit codes as every entry point (latentsync/command_line.py): 2 and one `error:`
line for a bad config, checkpoint, device, data or --json_out, checked before the model loads.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import torch

from eval.settings import SyncNetAccuracySettings
from eval.syncnet_accuracy import syncnet_accuracy
from latentsync.command_line import OneLineParser, add_verbose_flag, quiet_console, run_cli
from latentsync.errors import InputError


def load_run_config(path: str, overrides):
    """The SyncNet training config, with the training defaults merged in."""
    from latentsync.training.settings import load_training_config

    return load_training_config(path, overrides)


def dataset_batches(config, device: str, stats: dict | None = None) -> Iterator[tuple[torch.Tensor, ...]]:
    """(visual input, mel, label) batches from the validation split, as the trainer prepares them; every pass
    over the split is a new epoch (new windows and pairings). `stats` gets the clip count and passes."""
    from latentsync.data.syncnet_dataset import SyncNetDataset, syncnet_visual_input
    from latentsync.training.settings import SyncNetTrainingSettings

    settings = SyncNetTrainingSettings.from_config(config)
    dataset = SyncNetDataset(config.data.val_data_dir, config.data.val_fileslist, settings)
    loader = torch.utils.data.DataLoader(dataset, batch_size=int(config.data.batch_size), shuffle=False,
                                         num_workers=int(config.data.num_workers), drop_last=False)
    encoder = None
    if config.data.latent_space:
        from latentsync.data.syncnet_dataset import FrameEncoder

        encoder = FrameEncoder(settings, device)
        generator = torch.Generator().manual_seed(int(config.run.seed))
    stats = {} if stats is None else stats
    stats.update(clips=len(dataset), passes=0)
    epoch = 0
    while True:  # go round the split until enough samples are scored, each pass with the next epoch's draws
        dataset.set_epoch(epoch)
        stats["passes"] = epoch = epoch + 1
        empty = True
        for batch in loader:
            empty = False
            frames = batch["frames"]
            if encoder is not None:
                visual = encoder(frames.to(device), generator)
            else:
                visual = syncnet_visual_input(frames, bool(config.data.lower_half))
            yield visual, batch["audio_samples"], batch["y"]
        if empty:
            raise InputError(f"no validation samples in {config.data.val_data_dir} / {config.data.val_fileslist!r}")


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config_path", default="configs/syncnet/syncnet_16_latent.yaml")
    parser.add_argument("--ckpt_path", default=None, help="checkpoint (default: ckpt.inference_ckpt_path)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--json_out", default=None, help="also write the counts as JSON here")
    add_verbose_flag(parser)
    parser.add_argument("overrides", nargs="*", help="config overrides such as data.batch_size=8")
    args = parser.parse_args(argv)
    quiet_console(args.verbose)
    return run_cli(lambda: evaluate(args), args.verbose)


def evaluate(args) -> int:
    from eval.report import check_json_out
    from latentsync.config import model_config
    from latentsync.models.stable_syncnet import StableSyncNet
    from latentsync.training.settings import SyncNetTrainingSettings
    from latentsync.validation import check_input_file, device_or_default

    config = load_run_config(args.config_path, args.overrides)
    SyncNetTrainingSettings.from_config(config)  # every setting checked before the model loads
    device = device_or_default(args.device)
    check_json_out(args.json_out)
    ckpt = args.ckpt_path or config.ckpt.inference_ckpt_path
    if not ckpt:
        raise InputError("no checkpoint: pass --ckpt_path or set ckpt.inference_ckpt_path")
    check_input_file(ckpt, "--ckpt_path", "checkpoint file")
    torch.manual_seed(int(config.run.seed))
    model = StableSyncNet.from_pretrained(model_config(config), ckpt, device=device).eval().requires_grad_(False)
    dtype = torch.float16 if str(device).startswith("cuda") else torch.float32
    model.to(dtype=dtype)
    threshold = SyncNetAccuracySettings.from_eval_config().cosine_threshold
    stats: dict = {}
    report = syncnet_accuracy(model, dataset_batches(config, device, stats), threshold, device=device, dtype=dtype,
                              max_samples=int(config.data.num_val_samples))
    evidence = ""
    if stats:
        evidence = (f"\n{report.num_samples} samples from {stats['clips']} validation clip(s) in {stats['passes']} "
                    "pass(es) over the split (each pass draws new windows and in/out-of-sync pairings)")
    print(f"checkpoint: {ckpt}\n{report.summary()}{evidence}")
    if args.json_out:
        from eval.report import write_json

        write_json(args.json_out, {"checkpoint": str(Path(ckpt)), "threshold": threshold, **report.as_dict(),
                                   **{f"validation_{k}": v for k, v in stats.items()}})
    return 0 if report.num_samples else 1


if __name__ == "__main__":
    sys.exit(main())
