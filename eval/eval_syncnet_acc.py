"""Accuracy of a trained StableSyncNet on the validation split of a processed dataset.

    python -m eval.eval_syncnet_acc --config_path configs/syncnet/syncnet_16_pixel_attn.yaml \
        ckpt.inference_ckpt_path=checkpoints/stable_syncnet.pt

Reads `data.val_data_dir` / `data.val_fileslist`, scores `data.num_val_samples` pairs (half in sync, half
not, drawn by the training dataset) and prints the accuracy with a confusion table.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

import torch

from eval.settings import SyncNetAccuracySettings
from eval.syncnet_accuracy import syncnet_accuracy


def load_run_config(path: str, overrides):
    """The SyncNet training config (with the training defaults merged in when that module exists)."""
    try:
        from latentsync.utils.training_utils import load_training_config
    except ImportError:
        from latentsync.config import load_config as load_training_config
    return load_training_config(path, overrides)


def dataset_batches(config, device: str) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(visual input, mel, label) batches from the validation split, as the trainer prepares them."""
    from latentsync.data.syncnet_dataset import SyncNetDataset, syncnet_visual_input
    from latentsync.training_settings import SyncNetTrainingSettings

    settings = SyncNetTrainingSettings.from_config(config)
    dataset = SyncNetDataset(config.data.val_data_dir, config.data.val_fileslist, settings)
    loader = torch.utils.data.DataLoader(dataset, batch_size=int(config.data.batch_size), shuffle=False,
                                         num_workers=int(config.data.num_workers), drop_last=False)
    encoder = None
    if config.data.latent_space:
        from latentsync.cli.train_syncnet import FrameEncoder

        encoder = FrameEncoder(settings, device)
        generator = torch.Generator().manual_seed(int(config.run.seed))
    while True:  # like the original, go round the (randomly paired) split until enough samples are scored
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
            raise ValueError(f"no validation samples in {config.data.val_data_dir} / {config.data.val_fileslist!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config_path", default="configs/syncnet/syncnet_16_latent.yaml")
    parser.add_argument("--ckpt_path", default=None, help="checkpoint (default: ckpt.inference_ckpt_path)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--json_out", default=None, help="also write the counts as JSON here")
    parser.add_argument("overrides", nargs="*", help="config overrides such as data.batch_size=8")
    args = parser.parse_args(argv)

    from latentsync.config import model_config
    from latentsync.models.stable_syncnet import StableSyncNet

    config = load_run_config(args.config_path, args.overrides)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    ckpt = args.ckpt_path or config.ckpt.inference_ckpt_path
    if not ckpt:
        print("error: no checkpoint: pass --ckpt_path or set ckpt.inference_ckpt_path", file=sys.stderr)
        return 2
    torch.manual_seed(int(config.run.seed))
    model = StableSyncNet.from_pretrained(model_config(config), ckpt, device=device).eval().requires_grad_(False)
    dtype = torch.float16 if str(device).startswith("cuda") else torch.float32
    model.to(dtype=dtype)
    threshold = SyncNetAccuracySettings.from_eval_config().cosine_threshold
    report = syncnet_accuracy(model, dataset_batches(config, device), threshold, device=device, dtype=dtype,
                              max_samples=int(config.data.num_val_samples))
    print(f"checkpoint: {ckpt}\n{report.summary()}")
    if args.json_out:
        from eval.report import write_json

        write_json(args.json_out, {"checkpoint": str(ckpt), "threshold": threshold, **report.as_dict()})
    return 0 if report.num_samples else 1


if __name__ == "__main__":
    sys.exit(main())
