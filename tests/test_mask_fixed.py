"""The generated fixed mask (vs mask_golden.pt) and the ImageProcessor pixel helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from latentsync.faces.settings import load_faces_config
from latentsync.pipelines.conditioning import draw_base_mask
from latentsync.utils.image_processor import ImageProcessor, latent_mask, load_fixed_mask, normalize
from tests.helpers import shared_fixture

golden = shared_fixture("reference", "mask_golden.pt")


@pytest.mark.needs_shared
def test_mask_256_identical(golden):
    mask = load_fixed_mask(256)
    assert mask.dtype == torch.float64 and mask.shape == (3, 256, 256)
    assert torch.equal(mask, golden["mask_256"])


@pytest.mark.needs_shared
def test_mask_512_matches_official_lanczos(golden):
    mask = load_fixed_mask(512)
    assert mask.dtype == torch.float64 and mask.shape == (3, 512, 512)
    assert (mask - golden["mask_512"]).abs().max().item() <= 1 / 255
    assert len(torch.unique(mask)) == len(torch.unique(golden["mask_512"]))  # the ringing values too


@pytest.mark.needs_shared
@pytest.mark.parametrize("resolution", [256, 512])
def test_latent_mask_nearest(golden, resolution):
    assert torch.equal(latent_mask(load_fixed_mask(resolution)), golden[f"mask_{resolution}_latent"])


@pytest.mark.needs_shared
def test_official_default_path_is_generated(golden):
    # configs name latentsync/utils/mask.png, which this repository does not ship: the built-in mask is used
    assert torch.equal(load_fixed_mask(256, "latentsync/utils/mask.png"), golden["mask_256"])


def test_mask_shape_facts():
    """The documented facts about the official mask: binary, rows 95..242 hold the zeros, 40.7 % zeros."""
    base = draw_base_mask(load_faces_config().fixed_mask)
    assert base.shape == (256, 256) and set(np.unique(base)) == {0, 255}
    zero_rows = np.where((base == 0).any(axis=1))[0]
    assert zero_rows.min() == 95 and zero_rows.max() == 242
    assert (base == 0).mean() == pytest.approx(0.407, abs=5e-4)
    mask = load_fixed_mask(256)
    assert torch.equal(mask[0], mask[1]) and torch.equal(mask[0], mask[2])
    assert mask[:, 200, 128].tolist() == [0.0] * 3 and mask[:, 40, 128].tolist() == [1.0] * 3  # mouth / forehead


def test_mask_512_is_smooth_upsample_of_256():
    big = load_fixed_mask(512)[0]
    assert big.min() >= 0 and big.max() <= 1
    down = F.avg_pool2d(big[None, None], 2)[0, 0]
    assert (down - load_fixed_mask(256)[0]).abs().mean() < 0.01


def test_custom_mask_path(tmp_path):
    import cv2

    path = tmp_path / "half.png"
    img = np.full((64, 64, 3), 255, np.uint8)
    img[32:] = 0
    cv2.imwrite(str(path), img)
    mask = load_fixed_mask(64, str(path))
    assert mask[:, :32].min() == 1 and mask[:, 32:].max() == 0
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_fixed_mask(64, str(tmp_path / "missing.png"))


def test_normalise_and_masked_image():
    processor = ImageProcessor(resolution=256)
    rng = np.random.default_rng(0)
    faces = torch.from_numpy(rng.integers(0, 256, size=(3, 3, 256, 256), dtype=np.uint8))
    pixels, masked, masks = processor.prepare_masks_and_masked_images(faces, affine_transform=False)
    expected = (faces / 255.0 - 0.5) / 0.5
    assert torch.equal(pixels, expected)
    assert pixels.min() >= -1 and pixels.max() <= 1
    assert torch.equal(masked, expected * processor.mask_image)
    assert masks.shape == (3, 1, 256, 256) and torch.equal(masks[1], processor.mask_image[0:1])
    # the per-frame official entry point gives the same numbers
    one = processor.preprocess_fixed_mask_image(faces[1])
    assert torch.equal(one[0], pixels[1]) and torch.equal(one[1], masked[1]) and torch.equal(one[2], masks[1])
    assert torch.equal(normalize(torch.tensor([0.0, 255.0])), torch.tensor([-1.0, 1.0]))


def test_process_images_resizes_hwc_frames():
    processor = ImageProcessor(resolution=64)
    frames = np.full((2, 100, 80, 3), 200, np.uint8)
    pixels = processor.process_images(frames)
    assert pixels.shape == (2, 3, 64, 64)
    assert torch.allclose(pixels, torch.full_like(pixels, 200 / 255 * 2 - 1))
    assert processor.latent_mask().shape == (1, 8, 8)
