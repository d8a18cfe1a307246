"""AlignRestore against the official goldens (alignrestore_golden.pt), and the ROI shortcut against the full frame."""

from __future__ import annotations

import math

import cv2
import kornia
import numpy as np
import pytest
import torch

from latentsync.faces.alignment import AlignRestore, erode_rect
from tests.helpers import shared_fixture

RESOLUTIONS = (256, 512)


golden = shared_fixture("reference", "alignrestore_golden.pt")


def _run_sequence(golden, resolution):
    restorer = AlignRestore(resolution=resolution, device="cpu", dtype=torch.float32)
    image, landmarks = golden["image"].numpy(), golden["landmarks3"].numpy()
    faces, matrices, biases = [], [], []
    for k in range(len(landmarks)):
        face, matrix = restorer.align_warp_face(image.copy(), landmarks3=landmarks[k], smooth=True)
        faces.append(face)
        matrices.append(matrix[0])
        biases.append(restorer.p_bias.clone())
    return restorer, faces, torch.stack(matrices), torch.stack(biases)


@pytest.mark.needs_shared
@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_template_geometry(golden, resolution):
    ref = golden[f"res{resolution}"]
    restorer = AlignRestore(resolution=resolution)
    np.testing.assert_array_equal(restorer.face_template, ref["face_template"].numpy())
    assert list(restorer.face_size) == ref["face_size_wh"]
    assert list(restorer.crop_ratio) == pytest.approx(ref["crop_ratio"])
    assert restorer.upscale_factor == ref["upscale_factor"]


@pytest.mark.needs_shared
@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_matrices_and_nose_smoothing(golden, resolution):
    ref = golden[f"res{resolution}"]
    restorer, _, matrices, biases = _run_sequence(golden, resolution)
    assert matrices.dtype == torch.float32 and matrices.shape == (5, 2, 3)
    assert (matrices - ref["affine_matrices"]).abs().max().item() <= 1e-5
    assert (biases - ref["p_bias_after"]).abs().max().item() <= 1e-5
    template = restorer.face_template
    plain = torch.stack([
        torch.from_numpy(restorer.transformation_from_points(lm, template, False, None)[0])
        for lm in golden["landmarks3"].numpy()
    ])
    assert (plain - ref["affine_matrices_no_smooth"]).abs().max().item() <= 1e-5


@pytest.mark.needs_shared
@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_cropped_faces_uint8_within_one(golden, resolution):
    ref = golden[f"res{resolution}"]
    _, faces, _, _ = _run_sequence(golden, resolution)
    ours = torch.from_numpy(np.stack([faces[k] for k in ref["cropped_faces_frames"]]))
    assert ours.dtype == torch.uint8 and ours.shape == ref["cropped_faces"].shape
    diff = (ours.int() - ref["cropped_faces"].int()).abs()
    assert diff.max().item() <= 1
    assert (diff > 0).float().mean().item() < 0.1  # truncation flips only, not a shifted image


@pytest.mark.needs_shared
def test_cropped_faces_float_close(golden):
    ref = golden["res256"]
    restorer = AlignRestore(resolution=256)
    frames = np.stack([golden["image"].numpy()] * len(ref["cropped_faces_float_frames"]))
    matrices = ref["affine_matrices"][ref["cropped_faces_float_frames"]].numpy()
    crops, _ = restorer.warp_faces(frames, matrices, as_float=True)
    assert (crops - ref["cropped_faces_float"]).abs().max().item() < 1e-2


@pytest.mark.needs_shared
@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_resized_face_as_image_processor(golden, resolution):
    """The official LANCZOS4 step, exact on the golden crop; end to end it amplifies the ±1 crop flips to ±2."""
    ref = golden[f"res{resolution}"]
    golden_crop = ref["cropped_faces"][0].numpy()
    resized = cv2.resize(golden_crop, (resolution, resolution), interpolation=cv2.INTER_LANCZOS4)
    np.testing.assert_array_equal(resized.transpose(2, 0, 1), ref["face_resized_frame0"].numpy())
    _, faces, _, _ = _run_sequence(golden, resolution)
    ours = cv2.resize(faces[0], (resolution, resolution), interpolation=cv2.INTER_LANCZOS4).transpose(2, 0, 1)
    assert np.abs(ours.astype(int) - ref["face_resized_frame0"].numpy().astype(int)).max() <= 2


@pytest.mark.needs_shared
@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_restore_img_within_one(golden, resolution):
    ref = golden[f"res{resolution}"]
    restorer = AlignRestore(resolution=resolution)
    image = golden["image"].numpy()
    for j, k in enumerate(ref["restore_frames"]):
        face = ref["restore_face_u8"][j].float() / 127.5 - 1.0
        out = restorer.restore_img(image, face, ref["affine_matrices"][k][None])
        assert out.dtype == np.uint8 and out.shape == image.shape
        assert np.abs(out.astype(int) - ref["restored"][j].numpy().astype(int)).max() <= 1


# ---------------------------------------------------------------------------------------------------------
# Self-contained: the region-of-interest shortcut equals the official full-frame computation.


def _full_frame_restore(input_img, face, matrix, face_w, face_h):
    """The official restore algorithm over the whole frame (reference for the ROI version)."""
    h, w, _ = input_img.shape
    inv = kornia.geometry.transform.invert_affine_transform(matrix)
    fill = torch.tensor([127.0, 127.0, 127.0])
    inv_face = kornia.geometry.transform.warp_affine(face[None], inv, (h, w), padding_mode="fill", fill_value=fill)[0]
    inv_face = (inv_face / 2 + 0.5).clamp(0, 1) * 255
    img = torch.from_numpy(input_img).float().permute(2, 0, 1)
    inv_mask = kornia.geometry.transform.warp_affine(torch.ones(1, 1, face_h, face_w), inv, (h, w), padding_mode="zeros")
    eroded = kornia.morphology.erosion(inv_mask, torch.ones(2, 2))
    pasted = eroded[0] * inv_face
    w_edge = int(torch.sum(eroded).item() ** 0.5) // 20
    center = cv2.erode(eroded[0, 0].numpy(), np.ones((2 * w_edge, 2 * w_edge), np.uint8))
    size = 2 * w_edge + 1
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    soft = kornia.filters.gaussian_blur2d(torch.from_numpy(center)[None, None], (size, size), (sigma, sigma))[0]
    out = soft * pasted + (1 - soft) * img
    return out.permute(1, 2, 0).to(torch.uint8).numpy()


def _similarity(angle_deg, scale, tx, ty):
    a = math.radians(angle_deg)
    return torch.tensor([[[scale * math.cos(a), -scale * math.sin(a), tx], [scale * math.sin(a), scale * math.cos(a), ty]]])


@pytest.mark.parametrize("where", ["inside", "over_the_edge"])
def test_restore_roi_equals_full_frame(where):
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, size=(300, 420, 3), dtype=np.uint8)
    restorer = AlignRestore(resolution=256)
    face_w, face_h = restorer.face_size
    face = torch.from_numpy(rng.uniform(-1, 1, size=(3, face_h, face_w)).astype(np.float32))
    # image -> crop matrices; the face lands fully inside, or hangs over the left/top border
    matrix = _similarity(8, 1.6, -150, -60) if where == "inside" else _similarity(-5, 1.3, 40, 30)
    ours = restorer.restore_img(frame, face, matrix)
    ref = _full_frame_restore(frame, face, matrix, face_w, face_h)
    assert np.abs(ours.astype(int) - ref.astype(int)).max() <= 1
    assert (ours != frame).any()


def test_warp_roi_equals_full_frame():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, size=(3, 400, 500, 3), dtype=np.uint8)
    restorer = AlignRestore(resolution=256)
    matrices = torch.cat([_similarity(a, 1.5, -200 + 30 * a, -100) for a in (-10, 0, 12)])
    ours, _ = restorer.warp_faces(frames, matrices.numpy(), as_float=True)
    full = kornia.geometry.transform.warp_affine(
        torch.from_numpy(frames).float().permute(0, 3, 1, 2), matrices, (restorer.face_size[1], restorer.face_size[0]),
        padding_mode="fill", fill_value=torch.tensor([127.0, 127.0, 127.0]),
    ).permute(0, 2, 3, 1)
    # Only float32 rounding of the sampling grid differs (~1e-4 px); on pure noise (gradients up to 255/px)
    # that is a few hundredths of a grey level.
    assert (ours - full).abs().max().item() < 5e-2
    assert (ours.to(torch.uint8).int() - full.to(torch.uint8).int()).abs().max().item() <= 1


@pytest.mark.parametrize("size", [0, 1, 2, 3, 6, 7])
def test_erode_rect_matches_opencv(size):
    rng = np.random.default_rng(size)
    mask = (rng.uniform(size=(40, 50)) > 0.2).astype(np.float32) * rng.uniform(0.5, 1, size=(40, 50)).astype(np.float32)
    expected = cv2.erode(mask, np.ones((size, size), np.uint8))
    ours = erode_rect(torch.from_numpy(mask)[None, None], size)[0, 0].numpy()
    np.testing.assert_array_equal(ours, expected)


def test_erode_2x2_matches_kornia():
    """The 2x2 footprint erosion (kornia's origin and geodesic border) as a min-pool."""
    rng = np.random.default_rng(3)
    mask = torch.from_numpy(rng.uniform(size=(1, 1, 30, 40)).astype(np.float32))
    mask[..., :3, :] = 0
    expected = kornia.morphology.erosion(mask, torch.ones(2, 2))
    assert torch.equal(erode_rect(mask, 2), expected)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    rng = np.random.default_rng(2)
    frame = rng.integers(0, 256, size=(360, 480, 3), dtype=np.uint8)
    landmarks = np.array([[205.0, 135.0], [275.0, 133.0], [241.0, 178.0]])
    cpu, gpu = AlignRestore(resolution=256), AlignRestore(resolution=256, device="cuda")
    face_cpu, m_cpu = cpu.align_warp_face(frame, landmarks)
    face_gpu, m_gpu = gpu.align_warp_face(frame, landmarks)
    assert torch.equal(m_cpu, m_gpu.cpu())
    assert np.abs(face_cpu.astype(int) - face_gpu.astype(int)).max() <= 1
    face = torch.from_numpy(face_cpu).permute(2, 0, 1).float() / 127.5 - 1
    out_cpu = cpu.restore_img(frame, face, m_cpu)
    out_gpu = gpu.restore_img(frame, face.cuda(), m_gpu)
    assert np.abs(out_cpu.astype(int) - out_gpu.astype(int)).max() <= 1
