"""The syncnet_python "S" network (Chung & Zisserman, 2016): MFCC and mouth-crop embeddings.

State-dict keys match `checkpoints/auxiliary/syncnet_v2.model` (`netcnnaud.*`, `netfcaud.*`, `netfclip.*`,
`netcnnlip.*`, in that order). `width_divisor` shrinks every hidden width for tests (the reference golden
uses 4); the real checkpoint needs 1.
"""

from __future__ import annotations

import torch
from torch import nn

# Hidden widths of the full model, stage by stage; the stage layouts below are fixed by the checkpoint.
AUDIO_WIDTHS = (64, 192, 384, 256, 256, 512)
LIP_WIDTHS = (96, 256, 256, 256, 256, 512)
FC_HIDDEN = 512


def _audio_trunk(widths: tuple[int, ...]) -> nn.Sequential:
    """2-D convs over a (1, 13 MFCC, 20 step) window down to a (C, 1, 1) map."""
    a1, a2, a3, a4, a5, a6 = widths
    return nn.Sequential(
        nn.Conv2d(1, a1, kernel_size=3, padding=1),
        nn.BatchNorm2d(a1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=1, stride=1),
        nn.Conv2d(a1, a2, kernel_size=3, padding=1),
        nn.BatchNorm2d(a2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=(1, 2)),
        nn.Conv2d(a2, a3, kernel_size=3, padding=1),
        nn.BatchNorm2d(a3),
        nn.ReLU(inplace=True),
        nn.Conv2d(a3, a4, kernel_size=3, padding=1),
        nn.BatchNorm2d(a4),
        nn.ReLU(inplace=True),
        nn.Conv2d(a4, a5, kernel_size=3, padding=1),
        nn.BatchNorm2d(a5),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(a5, a6, kernel_size=(5, 4)),
        nn.BatchNorm2d(a6),
        nn.ReLU(),
    )


def _lip_trunk(widths: tuple[int, ...]) -> nn.Sequential:
    """3-D convs over 5 frames of a 224x224 face crop down to a (C, 1, 1, 1) map."""
    v1, v2, v3, v4, v5, v6 = widths
    return nn.Sequential(
        nn.Conv3d(3, v1, kernel_size=(5, 7, 7), stride=(1, 2, 2)),
        nn.BatchNorm3d(v1),
        nn.ReLU(inplace=True),
        nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2)),
        nn.Conv3d(v1, v2, kernel_size=(1, 5, 5), stride=(1, 2, 2), padding=(0, 1, 1)),
        nn.BatchNorm3d(v2),
        nn.ReLU(inplace=True),
        nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        nn.Conv3d(v2, v3, kernel_size=(1, 3, 3), padding=(0, 1, 1)),
        nn.BatchNorm3d(v3),
        nn.ReLU(inplace=True),
        nn.Conv3d(v3, v4, kernel_size=(1, 3, 3), padding=(0, 1, 1)),
        nn.BatchNorm3d(v4),
        nn.ReLU(inplace=True),
        nn.Conv3d(v4, v5, kernel_size=(1, 3, 3), padding=(0, 1, 1)),
        nn.BatchNorm3d(v5),
        nn.ReLU(inplace=True),
        nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2)),
        nn.Conv3d(v5, v6, kernel_size=(1, 6, 6)),
        nn.BatchNorm3d(v6),
        nn.ReLU(inplace=True),
    )


def _embedding_head(in_features: int, hidden: int, out_features: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_features, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Linear(hidden, out_features),
    )


class S(nn.Module):
    """Two-stream SyncNet: `forward_aud` (B,1,13,20) MFCC -> (B,fc); `forward_lip` (B,3,5,224,224) -> (B,fc).

    The lip stream takes BGR pixel values 0..255 without normalisation, as syncnet_python feeds it.
    """

    def __init__(self, num_layers_in_fc_layers: int = 1024, width_divisor: int = 1):
        super().__init__()
        audio = tuple(w // width_divisor for w in AUDIO_WIDTHS)
        lip = tuple(w // width_divisor for w in LIP_WIDTHS)
        hidden = FC_HIDDEN // width_divisor
        # Attribute order fixes the state-dict order of the official checkpoint.
        self.netcnnaud = _audio_trunk(audio)
        self.netfcaud = _embedding_head(audio[-1], hidden, num_layers_in_fc_layers)
        self.netfclip = _embedding_head(lip[-1], hidden, num_layers_in_fc_layers)
        self.netcnnlip = _lip_trunk(lip)

    def forward_aud(self, x: torch.Tensor) -> torch.Tensor:
        return self.netfcaud(self.netcnnaud(x).flatten(1))

    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:
        return self.netfclip(self.forward_lipfeat(x))

    def forward_lipfeat(self, x: torch.Tensor) -> torch.Tensor:
        """Conv features of the lip stream, before the embedding head."""
        return self.netcnnlip(x).flatten(1)

    def forward(self, lips: torch.Tensor, mfcc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_lip(lips), self.forward_aud(mfcc)
