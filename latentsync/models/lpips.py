"""LPIPS (VGG variant) without torchvision: the perceptual loss LatentSync applies to the lower half of faces.

Same computation as `lpips.LPIPS(net="vgg", version="0.1")`: inputs in [-1, 1] are shifted and
scaled towards ImageNet statistics, passed through the VGG16 conv trunk, the five relu*_* maps are
unit-normalised along channels, their squared differences weighted per channel by the learned
linear heads, averaged over space and summed over layers.

Weights:
- trunk: a torchvision-format VGG16 file (`features.N.weight` keys), by default
  checkpoints/auxiliary/vgg16-397923af.pth, else torch hub's cache; without one the trunk is random
  and a warning says LPIPS is not meaningful;
- heads: `lpips/weights/v0.1/vgg.pth` shipped inside the lpips wheel, located with
  importlib.util.find_spec so that lpips (whose import needs torchvision) is never imported.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import torch
from torch import nn

from latentsync.checkpoint import CheckpointError, read_checkpoint
from latentsync.config import REPO_ROOT

VGG16_WEIGHTS_NAME = "vgg16-397923af.pth"
DEFAULT_TRUNK_PATH = REPO_ROOT / "checkpoints" / "auxiliary" / VGG16_WEIGHTS_NAME
VGG16_WEIGHTS_URL = f"https://download.pytorch.org/models/{VGG16_WEIGHTS_NAME}"
LPIPS_HEADS_IN_PACKAGE = ("weights", "v0.1", "vgg.pth")

# torchvision's VGG16 `features` up to relu5_3: conv widths, "M" = 2x2 max-pool. Every conv is followed by a ReLU.
VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
# Indices in `features` of relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 and their widths.
TAP_INDICES = (3, 8, 15, 22, 29)
TAP_CHANNELS = (64, 128, 256, 512, 512)
# lpips v0.1 ScalingLayer: (x - shift) / scale maps [-1, 1] inputs to roughly ImageNet-normalised values.
INPUT_SHIFT = (-0.030, -0.088, -0.188)
INPUT_SCALE = (0.458, 0.448, 0.450)
UNIT_NORM_EPS = 1e-10


class LPIPSWeightsError(CheckpointError):
    """LPIPS weights are missing or do not fit the VGG16 layout."""


class VGG16Trunk(nn.Module):
    """VGG16 conv layers with torchvision's key layout; returns the five LPIPS feature maps."""

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 3
        for item in VGG16_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(in_channels, item, kernel_size=3, padding=1), nn.ReLU()]
                in_channels = item
        self.features = nn.Sequential(*layers)
        self._init_like_torchvision()

    def _init_like_torchvision(self) -> None:
        """He init (fan_out) and zero biases, so a random trunk still has well-scaled activations."""
        for module in self.features:
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in TAP_INDICES:
                taps.append(x)
        return taps


class LinearHead(nn.Module):
    """1x1 conv to one channel, no bias; `model.1` matches the lpips key (its slot 0 is an eval-mode dropout)."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Identity(), nn.Conv2d(channels, 1, kernel_size=1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _unit_normalise(features: torch.Tensor) -> torch.Tensor:
    """Scale each spatial feature vector to unit length (lpips.normalize_tensor)."""
    norm = torch.sqrt(torch.sum(features**2, dim=1, keepdim=True))
    return features / (norm + UNIT_NORM_EPS)


def find_lpips_heads() -> Path | None:
    """Path of the heads file shipped in the installed lpips package, without importing lpips."""
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location).joinpath(*LPIPS_HEADS_IN_PACKAGE)
        if candidate.is_file():
            return candidate
    return None


def find_vgg16_weights(path: str | Path | None = DEFAULT_TRUNK_PATH) -> Path | None:
    """The given VGG16 file if it exists, else the copy torchvision would have cached in torch hub."""
    if path is not None and Path(path).is_file():
        return Path(path)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / VGG16_WEIGHTS_NAME
    return cached if cached.is_file() else None


class LPIPS(nn.Module):
    """Learned perceptual distance, (b, 1, 1, 1) per image pair, inputs (b, 3, h, w) in [-1, 1].

    Frozen and always in eval mode; gradients flow to the inputs only. With
    `require_pretrained=True` missing weights raise instead of warning (use it for training).
    """

    def __init__(
        self,
        trunk_path: str | Path | None = DEFAULT_TRUNK_PATH,
        heads_path: str | Path | None = None,
        require_pretrained: bool = False,
    ):
        super().__init__()
        self.register_buffer("shift", torch.tensor(INPUT_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(INPUT_SCALE).view(1, 3, 1, 1))
        self.net = VGG16Trunk()
        self.lins = nn.ModuleList(LinearHead(c) for c in TAP_CHANNELS)
        self.require_pretrained = require_pretrained
        self.trunk_source = self._load_trunk(find_vgg16_weights(trunk_path), trunk_path)
        self.heads_source = self._load_heads(Path(heads_path) if heads_path else find_lpips_heads())
        self.requires_grad_(False)
        self.eval()

    # ---- weights -------------------------------------------------------------------------------

    def _missing(self, what: str, detail: str) -> None:
        message = f"LPIPS {what}: {detail}"
        if self.require_pretrained:
            raise LPIPSWeightsError(message)
        warnings.warn(message + " -- LPIPS values are NOT meaningful (random weights)", stacklevel=4)

    def _load_trunk(self, path: Path | None, requested: str | Path | None) -> str:
        if path is None:
            self._missing(
                "VGG16 trunk weights not found",
                f"looked for {requested} and torch hub's cache; download {VGG16_WEIGHTS_URL} to {DEFAULT_TRUNK_PATH}",
            )
            return "random"
        state = read_checkpoint(path, what="VGG16 trunk weights").state_dict
        trunk = {k: v for k, v in state.items() if k.startswith("features.")}
        expected = self.net.state_dict()
        if set(trunk) != set(expected) or any(trunk[k].shape != v.shape for k, v in expected.items()):
            raise LPIPSWeightsError(
                f"{path} is not a torchvision VGG16 state dict: expected {len(expected)} 'features.N.*' tensors "
                f"with VGG16 shapes, found {len(trunk)}"
            )
        self.net.load_state_dict(trunk)
        return str(path)

    def _load_heads(self, path: Path | None) -> str:
        if path is None or not path.is_file():
            self._missing(
                "linear heads not found",
                f"{path or 'the lpips package is not installed'}; install lpips (pip install --no-deps lpips==0.1.4)",
            )
            return "random"
        state = read_checkpoint(path, what="lpips heads").state_dict
        try:
            self.lins.load_state_dict({k.replace("lin", "", 1): v for k, v in state.items()})
        except RuntimeError as err:
            raise LPIPSWeightsError(f"{path} does not hold lpips VGG heads: {err}") from err
        return str(path)

    def train(self, mode: bool = True) -> LPIPS:
        """Stays in eval mode: it is a fixed metric, not a trainable part."""
        return super().train(False)

    # ---- distance ------------------------------------------------------------------------------

    def forward(self, pred: torch.Tensor, target: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """Distance per pair, shape (b, 1, 1, 1). `normalize=True` if inputs are in [0, 1] instead of [-1, 1]."""
        if pred.shape != target.shape or pred.ndim != 4 or pred.shape[1] != 3:
            raise ValueError(
                f"LPIPS needs two (b, 3, h, w) images of equal shape, got {tuple(pred.shape)} and {tuple(target.shape)}"
            )
        if normalize:
            pred, target = pred * 2 - 1, target * 2 - 1
        feats_pred = self.net((pred - self.shift) / self.scale)
        feats_target = self.net((target - self.shift) / self.scale)
        total = 0
        for head, fp, ft in zip(self.lins, feats_pred, feats_target, strict=True):
            diff = (_unit_normalise(fp) - _unit_normalise(ft)) ** 2
            total = total + head(diff).mean(dim=(2, 3), keepdim=True)
        return total

    def lower_half_loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """LatentSync's perceptual loss: mean LPIPS over the lower half (rows h//2:) of (n, 3, h, w) frames, fp32."""
        half = pred.shape[2] // 2
        return self(pred[:, :, half:, :].float(), target[:, :, half:, :].float()).mean()
