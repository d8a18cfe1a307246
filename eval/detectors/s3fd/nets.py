"""S3FD network (Zhang et al., 2017): VGG16 trunk, L2-normalised early sources, six anchor heads.

State-dict keys match `checkpoints/auxiliary/sfd_face.pth` (`vgg.N`, `L2Norm3_3`, `L2Norm4_3`, `L2Norm5_3`,
`extras.N`, `loc.N`, `conf.N`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from eval.detectors.s3fd.box_utils import detect, prior_boxes

# VGG16 layout: conv widths, "M" = 2x2 max-pool, "C" = the same with ceil_mode (pool3).
VGG_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "C", 512, 512, 512, "M", 512, 512, 512, "M")
FC_WIDTH = 1024
# Where the three L2-normalised sources are tapped (exclusive end index into `vgg`) and their initial scales.
L2_TAPS = ((16, 256, 10.0), (23, 512, 8.0), (30, 512, 5.0))
SOURCE_CHANNELS = (256, 512, 512, 1024, 512, 256)
EXTRAS = ((1024, 256, 1, 1, 0), (256, 512, 3, 2, 1), (512, 128, 1, 1, 0), (128, 256, 3, 2, 1))
BACKGROUND_MAXOUT = 3  # the first conf head predicts 3 background scores; their maximum is kept


class L2Norm(nn.Module):
    """Channel-wise L2 normalisation with a learned per-channel scale."""

    def __init__(self, n_channels: int, scale: float, eps: float = 1e-10):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.full((n_channels,), float(scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = x.pow(2).sum(dim=1, keepdim=True).sqrt() + self.eps
        return self.weight.view(1, -1, 1, 1) * (x / norm)


def _vgg_layers() -> list[nn.Module]:
    layers, channels = [], 3
    for item in VGG_LAYOUT:
        if item in ("M", "C"):
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=item == "C"))
        else:
            layers += [nn.Conv2d(channels, item, 3, 1, padding=1), nn.ReLU(inplace=True)]
            channels = item
    # fc6 (dilated 3x3) and fc7 (1x1) as convolutions.
    layers += [nn.Conv2d(channels, FC_WIDTH, 3, 1, padding=6, dilation=6), nn.ReLU(inplace=True)]
    layers += [nn.Conv2d(FC_WIDTH, FC_WIDTH, 1, 1), nn.ReLU(inplace=True)]
    return layers


class S3FDNet(nn.Module):
    """Input: (B, 3, H, W) float, RGB order minus the BGR means, 0..255 scale. Output: see `forward`."""

    def __init__(self, device: str = "cpu"):
        super().__init__()
        self.device = device
        self.vgg = nn.ModuleList(_vgg_layers())
        self.L2Norm3_3, self.L2Norm4_3, self.L2Norm5_3 = (L2Norm(c, s) for _, c, s in L2_TAPS)
        self.extras = nn.ModuleList(nn.Conv2d(i, o, k, s, padding=p) for i, o, k, s, p in EXTRAS)
        self.loc = nn.ModuleList(nn.Conv2d(c, 4, 3, 1, padding=1) for c in SOURCE_CHANNELS)
        conf_out = [BACKGROUND_MAXOUT + 1] + [2] * (len(SOURCE_CHANNELS) - 1)
        self.conf = nn.ModuleList(nn.Conv2d(c, o, 3, 1, padding=1) for c, o in zip(SOURCE_CHANNELS, conf_out, strict=True))

    def _sources(self, x: torch.Tensor) -> list[torch.Tensor]:
        sources, start = [], 0
        for (end, _, _), norm in zip(L2_TAPS, (self.L2Norm3_3, self.L2Norm4_3, self.L2Norm5_3), strict=True):
            for layer in self.vgg[start:end]:
                x = layer(x)
            sources.append(norm(x))
            start = end
        for layer in self.vgg[start:]:
            x = layer(x)
        sources.append(x)
        for k, layer in enumerate(self.extras):
            x = F.relu(layer(x), inplace=True)
            if k % 2 == 1:
                sources.append(x)
        return sources

    def heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int]]]:
        """Raw head outputs: offsets (B, P, 4), class logits (B, P, 2) and each head's (h, w)."""
        locs, confs, feature_maps = [], [], []
        for k, source in enumerate(self._sources(x)):
            loc = self.loc[k](source)
            conf = self.conf[k](source)
            if k == 0:
                background = conf[:, :BACKGROUND_MAXOUT].max(dim=1, keepdim=True)[0]
                conf = torch.cat((background, conf[:, BACKGROUND_MAXOUT:]), dim=1)
            feature_maps.append((loc.shape[2], loc.shape[3]))
            locs.append(loc.permute(0, 2, 3, 1).reshape(x.shape[0], -1, 4))
            confs.append(conf.permute(0, 2, 3, 1).reshape(x.shape[0], -1, 2))
        return torch.cat(locs, 1), torch.cat(confs, 1), feature_maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Detections (B, 2, 750, 5): rows `[score, x1, y1, x2, y2]` (normalised corners) of class 1, best first."""
        loc, conf_logits, feature_maps = self.heads(x)
        priors = prior_boxes(tuple(x.shape[2:]), feature_maps).to(loc.device)
        return detect(loc.cpu(), F.softmax(conf_logits, dim=-1).cpu(), priors.cpu())
