"""HyperIQA (Su et al., CVPR 2020) no-reference image quality, as the LatentSync data pipeline uses it.

A ResNet-50 backbone with "local distortion aware" branches feeds a hyper network that predicts the weights
of a small per-image target network; the target network outputs a 0-100 quality score (higher is better).
State-dict keys match `checkpoints/auxiliary/koniq_pretrained.pkl` (a plain torch.save'd state dict despite
the name). Unlike the original, construction downloads nothing: the checkpoint overwrites every tensor.

Shared entry point: `HyperIQAScorer(checkpoint).score_frames(frames) -> float`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from eval.settings import HyperIQASettings, checkpoint_path
from latentsync.checkpoint import load_weights

# HyperNet(16, 112, 224, 112, 56, 28, 14, 7): the configuration of the koniq checkpoint.
KONIQ_ARGS = dict(lda_out_channels=16, hyper_in_channels=112, target_in_size=224, target_fc1_size=112,
                  target_fc2_size=56, target_fc3_size=28, target_fc4_size=14, feature_size=7)
RESNET50_BLOCKS = (3, 4, 6, 3)


class Bottleneck(nn.Module):
    """ResNet v1 bottleneck (stride on the 3x3 conv), torchvision's parameter names."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


def _lda_branch(in_channels: int, out_channels: int) -> nn.Sequential:
    """1x1 conv then 7x7 average pooling: a cheap local-distortion summary of one stage."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False), nn.AvgPool2d(7, stride=7))


class ResNetBackbone(nn.Module):
    """ResNet-50 without avgpool/fc, plus four LDA branches whose outputs form the target network's input.

    Only 224x224 inputs work: the LDA flatten sizes are fixed.
    """

    def __init__(self, lda_out_channels: int, in_chn: int, block=Bottleneck, layers=RESNET50_BLOCKS):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.lda1_pool = _lda_branch(256, 16)
        self.lda1_fc = nn.Linear(16 * 64, lda_out_channels)
        self.lda2_pool = _lda_branch(512, 32)
        self.lda2_fc = nn.Linear(32 * 16, lda_out_channels)
        self.lda3_pool = _lda_branch(1024, 64)
        self.lda3_fc = nn.Linear(64 * 4, lda_out_channels)
        self.lda4_pool = nn.AvgPool2d(7, stride=7)
        self.lda4_fc = nn.Linear(2048, in_chn - lda_out_channels * 3)

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        lda_1 = self.lda1_fc(self.lda1_pool(x).flatten(1))
        x = self.layer2(x)
        lda_2 = self.lda2_fc(self.lda2_pool(x).flatten(1))
        x = self.layer3(x)
        lda_3 = self.lda3_fc(self.lda3_pool(x).flatten(1))
        x = self.layer4(x)
        lda_4 = self.lda4_fc(self.lda4_pool(x).flatten(1))
        return {"hyper_in_feat": x, "target_in_vec": torch.cat((lda_1, lda_2, lda_3, lda_4), 1)}


def resnet50_backbone(lda_out_channels: int, in_chn: int) -> ResNetBackbone:
    """The backbone without ImageNet weights (the HyperIQA checkpoint replaces them all)."""
    return ResNetBackbone(lda_out_channels, in_chn, Bottleneck, RESNET50_BLOCKS)


class HyperNet(nn.Module):
    """Predicts the weights and biases of a 4-hidden-layer target network from the backbone features."""

    def __init__(self, lda_out_channels, hyper_in_channels, target_in_size, target_fc1_size, target_fc2_size,
                 target_fc3_size, target_fc4_size, feature_size):
        super().__init__()
        self.hyperInChn = hyper_in_channels
        self.target_in_size = target_in_size
        self.f1, self.f2, self.f3, self.f4 = target_fc1_size, target_fc2_size, target_fc3_size, target_fc4_size
        self.feature_size = feature_size
        self.res = resnet50_backbone(lda_out_channels, target_in_size)
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.conv1 = nn.Sequential(
            nn.Conv2d(2048, 1024, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(1024, 512, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(512, hyper_in_channels, 1),
            nn.ReLU(inplace=True),
        )
        cells = feature_size**2
        sizes = [target_in_size, self.f1, self.f2, self.f3, self.f4]
        for k in range(1, 5):  # fc{k}w_conv: per-position weight chunks; fc{k}b_fc: biases from pooled features
            setattr(self, f"fc{k}w_conv", nn.Conv2d(hyper_in_channels, sizes[k - 1] * sizes[k] // cells, 3, padding=1))
            setattr(self, f"fc{k}b_fc", nn.Linear(hyper_in_channels, sizes[k]))
        self.fc5w_fc = nn.Linear(hyper_in_channels, self.f4)
        self.fc5b_fc = nn.Linear(hyper_in_channels, 1)

    def forward(self, img: torch.Tensor) -> dict[str, torch.Tensor]:
        res_out = self.res(img)
        feat = self.conv1(res_out["hyper_in_feat"]).reshape(-1, self.hyperInChn, self.feature_size, self.feature_size)
        pooled = self.pool(feat).flatten(1)
        sizes = [self.target_in_size, self.f1, self.f2, self.f3, self.f4]
        out = {"target_in_vec": res_out["target_in_vec"].reshape(-1, self.target_in_size, 1, 1)}
        for k in range(1, 5):
            weight = getattr(self, f"fc{k}w_conv")(feat)
            out[f"target_fc{k}w"] = weight.reshape(-1, sizes[k], sizes[k - 1], 1, 1)
            out[f"target_fc{k}b"] = getattr(self, f"fc{k}b_fc")(pooled).reshape(-1, sizes[k])
        out["target_fc5w"] = self.fc5w_fc(pooled).reshape(-1, 1, self.f4, 1, 1)
        out["target_fc5b"] = self.fc5b_fc(pooled).reshape(-1, 1)
        return out


class TargetFC(nn.Module):
    """A fully connected layer with per-sample weights, run as one grouped 1x1 convolution."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor):
        super().__init__()
        self.weight = weight
        self.bias = bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, out_features, in_features = self.weight.shape[:3]
        grouped = x.reshape(1, batch * x.shape[1], x.shape[2], x.shape[3])
        weight = self.weight.reshape(batch * out_features, in_features, self.weight.shape[3], self.weight.shape[4])
        out = F.conv2d(grouped, weight, self.bias.reshape(batch * out_features), groups=batch)
        return out.reshape(batch, out_features, x.shape[2], x.shape[3])


class TargetNet(nn.Module):
    """sigmoid(FC1..FC4) then FC5, with weights from `HyperNet`; returns `.squeeze()`d scores (0-d for B = 1)."""

    def __init__(self, paras: dict[str, torch.Tensor]):
        super().__init__()
        layers = []
        for k in range(1, 5):
            layers += [TargetFC(paras[f"target_fc{k}w"], paras[f"target_fc{k}b"]), nn.Sigmoid()]
        layers.append(TargetFC(paras["target_fc5w"], paras["target_fc5b"]))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).squeeze()


def center_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, size, size) centre crop, zero-padding first when smaller (torchvision rules)."""
    height, width = images.shape[-2:]
    if height < size or width < size:
        pad_w, pad_h = max(size - width, 0), max(size - height, 0)
        images = F.pad(images, (pad_w // 2, (pad_w + 1) // 2, pad_h // 2, (pad_h + 1) // 2))
        height, width = images.shape[-2:]
    top = int(round((height - size) / 2.0))
    left = int(round((width - size) / 2.0))
    return images[..., top : top + size, left : left + size]


def quality_frame_indices(num_frames: int) -> list[int]:
    """The frames the data pipeline scores: first, middle and last."""
    if num_frames <= 0:
        raise ValueError("video has no frames")
    return [0, num_frames // 2, num_frames - 1]


class HyperIQAScorer:
    """HyperIQA with its checkpoint; `score_frames` is shared by the data pipeline's quality filter."""

    def __init__(self, checkpoint: str | Path | None = None, device: str = "cpu",
                 settings: HyperIQASettings | None = None, model: HyperNet | None = None):
        self.settings = settings or HyperIQASettings.from_eval_config()
        self.device = device
        if model is None:
            model = HyperNet(**KONIQ_ARGS)
            load_weights(model, checkpoint or checkpoint_path("hyperiqa"), "HyperIQA")
        self.model = model.to(device).eval()

    def prepare(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """RGB frames (N, H, W, 3) uint8 -> normalised (N, 3, 224, 224) centre crops (no resize)."""
        frames = torch.as_tensor(np.asarray(frames))
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be (N, H, W, 3) RGB, got shape {tuple(frames.shape)}")
        images = frames.permute(0, 3, 1, 2).float() / 255.0
        images = center_crop(images, self.settings.crop_size)
        mean = torch.tensor(self.settings.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.settings.std).view(1, 3, 1, 1)
        return (images - mean) / std

    @torch.no_grad()
    def predict(self, frames) -> torch.Tensor:
        """Per-frame scores (N,), 0-100."""
        paras = self.model(self.prepare(frames).to(self.device))
        return TargetNet(paras)(paras["target_in_vec"]).reshape(-1).cpu()

    def score_frames(self, frames: np.ndarray | torch.Tensor) -> float:
        """Mean quality of the given RGB frames (the pipeline passes first, middle and last frame)."""
        return float(self.predict(frames).mean().item())

    def score_video(self, video_path: str | Path) -> float:
        """Quality of a video from its first, middle and last frames (preprocess/filter_visual_quality)."""
        from latentsync.utils.media import VideoReader

        reader = VideoReader(video_path)
        return self.score_frames(reader.get_frames(quality_frame_indices(len(reader))))
