"""Pixel-side preprocessing for the UNet: the fixed mask, [-1, 1] normalisation, masked images, face crops.

Official names and behaviour (`load_fixed_mask`, `ImageProcessor`), with two differences that the official
code cannot do: faces are detected on the CPU too (mediapipe by default), and the mask is generated from its
geometric description instead of read from `latentsync/utils/mask.png`.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from latentsync.errors import NoFaceError
from latentsync.faces.alignment import AlignRestore
from latentsync.faces.detector import FaceDetector

from .mask import fixed_mask_rgb_u8

OFFICIAL_MASK_PATH = "latentsync/utils/mask.png"  # what official configs name; generated here, not read
VAE_SCALE_FACTOR = 8


def load_fixed_mask(resolution: int, mask_image_path: str | None = None) -> torch.Tensor:
    """(3, R, R) float64 mask in [0, 1]: 1 keeps the reference pixel, 0 is the mouth region to regenerate.

    Identical to the official `load_fixed_mask` (RGB, LANCZOS4 resize of the uint8 image, / 255). With no
    path, or the official default path, the mask is generated; any other path is read as an image file.
    """
    if mask_image_path is None or (Path(mask_image_path).as_posix() == OFFICIAL_MASK_PATH
                                   and not Path(mask_image_path).is_file()):
        image = fixed_mask_rgb_u8(resolution)
    else:
        bgr = cv2.imread(str(mask_image_path))
        if bgr is None:
            raise FileNotFoundError(f"mask image not found or unreadable: {mask_image_path} "
                                    f"(omit mask_image_path to use the built-in LatentSync mask)")
        image = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (resolution, resolution),
                           interpolation=cv2.INTER_LANCZOS4)
    return torch.from_numpy(image / 255.0).permute(2, 0, 1).contiguous()


def latent_mask(mask: torch.Tensor, vae_scale_factor: int = VAE_SCALE_FACTOR) -> torch.Tensor:
    """(1, R/8, R/8) mask at latent resolution: first channel, nearest interpolation (the pipeline's rule)."""
    size = (mask.shape[-2] // vae_scale_factor, mask.shape[-1] // vae_scale_factor)
    return F.interpolate(mask[0:1][None], size=size)[0]


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8-range images -> [-1, 1], in the official order of operations (/255, then -0.5 and /0.5)."""
    return (images / 255.0 - 0.5) / 0.5


def resize_bicubic(images: torch.Tensor, size: int) -> torch.Tensor:
    """Square bicubic resize with antialias, like torchvision's Resize (uint8 in -> rounded uint8 out)."""
    batched = images if images.ndim == 4 else images[None]
    if batched.shape[-2:] == (size, size):
        return images
    out = F.interpolate(batched.float(), size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    if images.dtype == torch.uint8:
        out = out.round().clamp(0, 255).to(torch.uint8)
    return out if images.ndim == 4 else out[0]


class ImageProcessor:
    """Masks, normalisation and single-frame face alignment at one resolution (official interface)."""

    def __init__(self, resolution: int = 512, device: str = "cpu", mask_image=None,
                 face_detector: FaceDetector | str | None = None, config=None):
        self.resolution = resolution
        self.device = device
        self.restorer = AlignRestore(resolution=resolution, device=device, dtype=torch.float32)
        self.mask_image = load_fixed_mask(resolution) if mask_image is None else mask_image
        self._face_detector = face_detector
        self._config = config

    @property
    def face_detector(self) -> FaceDetector:
        """Created on first use, so mask/normalise users never load a face model."""
        if not isinstance(self._face_detector, FaceDetector):
            self._face_detector = FaceDetector(device=self.device, backend=self._face_detector, config=self._config)
        return self._face_detector

    def resize(self, images: torch.Tensor) -> torch.Tensor:
        return resize_bicubic(images, self.resolution)

    def latent_mask(self) -> torch.Tensor:
        return latent_mask(self.mask_image)

    def affine_transform(self, image: np.ndarray, allow_missing: bool = False):
        """(face (3, R, R) uint8, box [0, 0, w, h], affine_matrix (1, 2, 3)) for one RGB uint8 frame.

        Raises NoFaceError (a RuntimeError too, as the official) when there is no usable face, or returns None
        with `allow_missing=True`.
        Each call advances the official nose smoothing, so call it on consecutive frames of one video.
        """
        image = np.asarray(image)
        result = self.face_detector.detect(image, choice="largest")
        if result is None:
            if allow_missing:
                return None
            raise NoFaceError(f"Face not detected (frame {image.shape[1]}x{image.shape[0]}, "
                              f"detector {self.face_detector.name})")
        landmarks3 = np.round(result.points3)
        face, affine_matrix = self.restorer.align_warp_face(image, landmarks3=landmarks3, smooth=True)
        box = [0, 0, face.shape[1], face.shape[0]]  # x1, y1, x2, y2
        face = cv2.resize(face, (self.resolution, self.resolution), interpolation=cv2.INTER_LANCZOS4)
        return torch.from_numpy(face).permute(2, 0, 1).contiguous(), box, affine_matrix

    def preprocess_fixed_mask_image(self, image: torch.Tensor, affine_transform: bool = False):
        """(pixel_values in [-1, 1], masked pixel values, mask (1, R, R)) for one (3, H, W) image."""
        if affine_transform:
            image, _, _ = self.affine_transform(image.permute(1, 2, 0).numpy())
        else:
            image = self.resize(image)
        pixel_values = normalize(image)
        masked_pixel_values = pixel_values * self.mask_image
        return pixel_values, masked_pixel_values, self.mask_image[0:1]

    def prepare_masks_and_masked_images(self, images: torch.Tensor | np.ndarray, affine_transform=False):
        """Stacked (pixel_values, masked_pixel_values, masks) for (F, H, W, 3) or (F, 3, H, W) images."""
        images = self._to_fchw(images)
        if not affine_transform:  # one batched resize instead of a per-frame loop; same numbers
            pixel_values = normalize(self.resize(images))
            count = len(images)
            return pixel_values, pixel_values * self.mask_image, self.mask_image[0:1].expand(count, -1, -1, -1).clone()
        results = [self.preprocess_fixed_mask_image(image, affine_transform=True) for image in images]
        pixel_values, masked, masks = zip(*results, strict=True)
        return torch.stack(pixel_values), torch.stack(masked), torch.stack(masks)

    def process_images(self, images: torch.Tensor | np.ndarray) -> torch.Tensor:
        """(F, 3, R, R) pixel values in [-1, 1]."""
        return normalize(self.resize(self._to_fchw(images)))

    @staticmethod
    def _to_fchw(images) -> torch.Tensor:
        if isinstance(images, np.ndarray):
            images = torch.from_numpy(images)
        if images.shape[3] == 3:
            images = images.permute(0, 3, 1, 2)
        return images

    def close(self) -> None:
        if isinstance(self._face_detector, FaceDetector):
            self._face_detector.close()
