"""Shim: the U-Net training command is `latentsync.cli.train_unet` (console script `latentsync-train-unet`).

Kept so `python -m scripts.train_unet` works from the repository root, as in the official layout. Importing
this module gives the package module itself (one module object, so attributes set on it are seen there).
"""

import sys

from latentsync.cli import train_unet as _impl

if __name__ == "__main__":
    sys.exit(_impl.run())
sys.modules[__name__] = _impl
