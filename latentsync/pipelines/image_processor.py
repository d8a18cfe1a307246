"""The official `ImageProcessor` and `load_fixed_mask`, for code written against the official LatentSync.

`latentsync/utils/image_processor.py` (the official path) is this module under its official name. The work is
done by `latentsync.pipelines.conditioning` (masks, pixel values) and `latentsync.faces` (detection,
alignment); our own code calls those directly. Two differences from the official code: faces are detected on
the CPU too (mediapipe by default), and the mask is drawn from configs/faces.yaml's `fixed_mask` geometry
instead of read from `latentsync/utils/mask.png`.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from latentsync.errors import NoFaceError
from latentsync.faces.alignment import AlignRestore
from latentsync.faces.detector import FaceDetector
from latentsync.faces.settings import load_faces_config
from latentsync.pipelines import conditioning
from latentsync.pipelines.conditioning import (
    OFFICIAL_MASK_PATH,
    latent_mask,
    normalize,
    pixel_values,
    resize_bicubic,
    to_fchw,
)

__all__ = ["NoFaceError", "ImageProcessor", "load_fixed_mask", "latent_mask", "normalize"]


def packaged_fixed_mask():
    """configs/faces.yaml's `fixed_mask` geometry: what the official signatures below default to."""
    return load_faces_config().fixed_mask


def load_fixed_mask(resolution: int, mask_image_path: str | None = OFFICIAL_MASK_PATH) -> torch.Tensor:
    """The official signature: (3, R, R) float64 mask, the packaged geometry unless another image is named."""
    return conditioning.load_fixed_mask(resolution, mask_image_path, fixed_mask=packaged_fixed_mask())


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

        Raises NoFaceError (a RuntimeError too, as the official) when there is no usable face, or returns None with `allow_missing=True`.
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
        values = normalize(image)
        return values, values * self.mask_image, self.mask_image[0:1]

    def prepare_masks_and_masked_images(self, images: torch.Tensor | np.ndarray, affine_transform=False):
        """Stacked (pixel_values, masked_pixel_values, masks) for (F, H, W, 3) or (F, 3, H, W) images."""
        if not affine_transform:
            return conditioning.masked_images(images, self.mask_image)
        results = [self.preprocess_fixed_mask_image(image, affine_transform=True) for image in to_fchw(images)]
        values, masked, masks = zip(*results, strict=True)
        return torch.stack(values), torch.stack(masked), torch.stack(masks)

    def process_images(self, images: torch.Tensor | np.ndarray) -> torch.Tensor:
        """(F, 3, R, R) pixel values in [-1, 1]."""
        return pixel_values(images, self.resolution)

    def close(self) -> None:
        if isinstance(self._face_detector, FaceDetector):
            self._face_detector.close()
