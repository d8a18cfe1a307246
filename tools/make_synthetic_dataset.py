"""Write a synthetic lip-sync training set: aligned-face clips whose mouth follows generated syllables.

    python -m tools.make_synthetic_dataset --out data/synthetic                       # 64 px, 160 train + 32 val
    python -m tools.make_synthetic_dataset --out data/synthetic_256 --resolution 256 --num_train 40
    python -m tools.make_synthetic_dataset --out data/offset_test --offsets 0 3 -5   # controlled AV offsets
    python -m tools.make_synthetic_dataset --out data/x --set speech.pitch_hz=[80,120]  # any config value

Writes <out>/train/*.mp4, <out>/val/*.mp4 (held out: unseen syllables, motion and appearance), a .json
sidecar per clip and <out>/manifest.json. Numbers live in configs/training/synthetic_data.yaml.
`--offsets` delays the mouth by that many frames (positive: video lags audio), assigned round-robin.
"""

from __future__ import annotations

import argparse
import logging
import sys

from tqdm import tqdm

from latentsync.data.synthetic import make_dataset, synthetic_config

logger = logging.getLogger("make_synthetic_dataset")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="output folder (gets train/, val/, manifest.json)")
    parser.add_argument("--resolution", type=int, help="frame size in pixels (64 or 256 are typical)")
    parser.add_argument("--num_train", type=int, help="number of training clips")
    parser.add_argument("--num_val", type=int, help="number of held-out clips")
    parser.add_argument("--seconds", type=float, help="clip length in seconds")
    parser.add_argument("--seed", type=int, help="dataset seed (clip seeds derive from it)")
    parser.add_argument("--offsets", type=int, nargs="+", default=[0],
                        help="audio/video offsets in frames, assigned to clips round-robin (default: 0)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="overrides of configs/training/synthetic_data.yaml (inside `synthetic:`)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    flags = {"resolution": args.resolution, "num_train": args.num_train, "num_val": args.num_val,
             "clip_seconds": args.seconds, "seed": args.seed}
    overrides = [f"{k}={v}" for k, v in flags.items() if v is not None] + list(args.set)
    cfg = synthetic_config(overrides)
    if cfg.clip_seconds * cfg.fps < 48:
        logger.warning("clips of %.2f s have fewer than 48 frames; the U-Net dataset needs 3 x 16 frames per clip",
                       cfg.clip_seconds)
    manifest = make_dataset(args.out, cfg, offsets=args.offsets, progress=lambda xs: tqdm(xs, desc="clips"))
    logger.info("wrote %d train + %d val clips at %d px; manifest: %s", cfg.num_train, cfg.num_val,
                cfg.resolution, manifest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
