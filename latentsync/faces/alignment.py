"""Face alignment to the LatentSync template and paste-back, numerically compatible with the official code.

`AlignRestore` keeps the official names, signatures and numbers (so checkpoints see the same crops):

- a similarity transform maps three points (left eyebrow centre, right eyebrow centre, nose centre) onto a
  fixed template; with `smooth=True` the nose residual is low-pass filtered across frames (`p_bias`);
- `align_warp_face` warps to a (100 x 75) * 2.8 * R/256 crop, bilinear with a grey (127) fill, truncated to
  uint8 like the official kornia `warp_affine` call;
- `restore_img` warps the generated face back, erodes and Gaussian-feathers the footprint and blends.

Both directions only touch the face's region of interest (ROI) instead of the whole frame, and sample with
grids computed in float64 straight from the matrix. The result equals the official full-frame kornia
computation up to float rounding of the sampling grid (checked against the official goldens: uint8 within 1,
float crops within 0.01). That is what makes 1080p frames cheap. Everything runs in float32 on CPU or CUDA
(the official fp16 default produces NaNs on CPU, see the reference README).
"""

from __future__ import annotations

import math

import cv2
import kornia
import numpy as np
import torch
import torch.nn.functional as F

# Official template (StyleSync-derived): three points in a 75 x 100 face box, scaled by 2.8 at R = 256.
TEMPLATE_POINTS = ((17.0, 20.0), (58.0, 20.0), (37.5, 40.0))
TEMPLATE_BOX_WH = (75, 100)
TEMPLATE_SCALE_AT_256 = 2.8
PREVIOUS_BIAS_WEIGHT = 0.2  # smooth=True: bias = 0.2 * previous + 0.8 * current
FILL_VALUE = 127.0  # grey outside the frame in the crop (and, unused, outside the face when restoring)
MASK_EROSION_PX = 2  # kornia 2x2 erosion of the warped face footprint (x upscale_factor)
EDGE_DIVISOR = 20  # feather width = int(sqrt(footprint area)) // 20


def _bilinear_footprint(matrix_inv: np.ndarray, width: int, height: int, pad: float) -> np.ndarray:
    """Corners of the rectangle [-pad, w-1+pad] x [-pad, h-1+pad] mapped by a 2x3 matrix, as (4, 2)."""
    xs = np.array([-pad, width - 1 + pad, -pad, width - 1 + pad])
    ys = np.array([-pad, -pad, height - 1 + pad, height - 1 + pad])
    # Written out instead of `corners @ m.T`: a numpy matmul makes OpenBLAS allocate a 32 MB buffer in every
    # thread that calls it, and this runs in the pipeline's worker threads.
    m = matrix_inv
    return np.stack([m[0, 0] * xs + m[0, 1] * ys + m[0, 2], m[1, 0] * xs + m[1, 1] * ys + m[1, 2]], axis=1)


def _invert_affine_np(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix, in float64 (closed form: no LAPACK call per frame)."""
    m = np.asarray(matrix, dtype=np.float64)
    a, b, c, d = m[0, 0], m[0, 1], m[1, 0], m[1, 1]
    det = a * d - b * c
    if det == 0:
        raise ValueError("degenerate alignment matrix (zero determinant): the 3 landmark points are collinear")
    linear = np.array([[d, -b], [-c, a]]) / det
    return np.concatenate([linear, -(linear @ m[:, 2:3])], axis=1)


def _clip_box(points: np.ndarray, width: int, height: int, margin: int) -> tuple[int, int, int, int]:
    """Integer box (x0, y0, x1, y1), exclusive end, around points plus a margin, clipped to the image."""
    x0 = max(0, int(math.floor(points[:, 0].min())) - margin)
    y0 = max(0, int(math.floor(points[:, 1].min())) - margin)
    x1 = min(width, int(math.ceil(points[:, 0].max())) + margin + 1)
    y1 = min(height, int(math.ceil(points[:, 1].max())) + margin + 1)
    if x1 <= x0 or y1 <= y0:  # the region lies entirely outside the image: keep a 1-pixel ROI
        x0, y0 = min(max(x0, 0), width - 1), min(max(y0, 0), height - 1)
        x1, y1 = x0 + 1, y0 + 1
    return x0, y0, x1, y1


def _sampling_grid(out_to_src: np.ndarray, out_hw: tuple[int, int], src_origin: tuple[int, int], src_hw,
                   out_origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """`grid_sample` grid (align_corners=True): output pixel (u, v) reads source pixel out_to_src @ (u, v, 1).

    `out_origin` / `src_origin` are where the output and source arrays start in the matrix's coordinates
    (regions of interest, padding). Computed in float64, then float32, so cutting regions adds no rounding.
    """
    out_h, out_w = out_hw
    src_h, src_w = src_hw
    u = np.arange(out_w, dtype=np.float64)[None, :] + out_origin[0]
    v = np.arange(out_h, dtype=np.float64)[:, None] + out_origin[1]
    grid = np.empty((out_h, out_w, 2), dtype=np.float32)
    # One float64 plane at a time, scaled in place, then rounded once into the float32 grid (same values as
    # stacking both planes in float64 first, with a third of the temporary memory).
    for axis, (row, origin, size) in enumerate(((out_to_src[0], src_origin[0], src_w),
                                                (out_to_src[1], src_origin[1], src_h))):
        plane = row[0] * u + (row[1] * v + (row[2] - origin))
        plane *= 2.0 / max(size - 1, 1)
        plane -= 1.0
        grid[..., axis] = plane
    return grid


def erode_rect(mask: torch.Tensor, size: int) -> torch.Tensor:
    """`cv2.erode(mask, np.ones((size, size)))` for (N, 1, H, W) float masks, on any device.

    Same window (anchor at size // 2), same border rule (pixels outside the image never erode), and an empty
    kernel means 3x3 as in OpenCV. A rectangle's minimum is the minimum of row minima, so it runs as two
    1-D passes; the minimum of the same values is exact, so results equal OpenCV's.
    """
    if size <= 0:
        size = 3
    if size == 1:
        return mask.clone()
    before = size // 2
    after = size - 1 - before
    negated = F.pad(-mask, (before, after, 0, 0), mode="constant", value=-math.inf)
    negated = F.max_pool2d(negated, kernel_size=(1, size), stride=1)
    negated = F.pad(negated, (0, 0, before, after), mode="constant", value=-math.inf)
    return -F.max_pool2d(negated, kernel_size=(size, 1), stride=1)


def _matmul_small(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Tiny float32 matrix product as separately rounded multiply-adds, in a fixed order.

    BLAS kernels pick FMA or not depending on the CPU, which moves the last bits of 2x2 products and, through
    the translation (~hundreds of pixels), the matrices by several 1e-5. This order is the same everywhere.
    """
    out = a[:, 0:1] * b[0:1, :]
    for k in range(1, a.shape[1]):
        out = out + a[:, k : k + 1] * b[k : k + 1, :]
    return out


def _det_2x2(m: torch.Tensor) -> float:
    return float(m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0])


def _svd_2x2(cov: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(U, V) of a float32 2x2 matrix with the reference LAPACK driver (sgesdd), as the official torch.svd.

    torch's MKL SVD gives CPU-dependent last bits; the reference LAPACK bundled with SciPy reproduces the
    official goldens exactly (and MKL's own run with MKL_CBWR=COMPATIBLE).
    """
    from scipy.linalg import lapack

    u, _, vt, info = lapack.sgesdd(np.ascontiguousarray(cov.numpy(), dtype=np.float32))
    if info != 0:
        raise np.linalg.LinAlgError(f"SVD of the landmark covariance did not converge (LAPACK info={info})")
    return torch.from_numpy(u.copy()), torch.from_numpy(vt.T.copy())


class AlignRestore:
    """Official-compatible aligner. `p_bias` carries the nose smoothing from one frame to the next."""

    def __init__(self, align_points=3, resolution=256, device="cpu", dtype=torch.float32):
        if align_points != 3:
            raise ValueError(f"AlignRestore supports align_points=3 only (the LatentSync template), got {align_points}")
        ratio = resolution / 256 * TEMPLATE_SCALE_AT_256
        self.resolution = resolution
        self.upscale_factor = 1
        self.crop_ratio = (ratio, ratio)
        self.face_template = np.array(TEMPLATE_POINTS) * ratio
        self.face_size = (int(TEMPLATE_BOX_WH[0] * ratio), int(TEMPLATE_BOX_WH[1] * ratio))  # (w, h)
        self.p_bias = None
        self.device = device
        self.dtype = dtype
        self.fill_value = torch.tensor([FILL_VALUE] * 3, device=device, dtype=dtype)
        self.mask = torch.ones((1, 1, self.face_size[1], self.face_size[0]), device=device, dtype=dtype)

    # ------------------------------------------------------------------------------------------ transform

    def transformation_from_points(self, points1, points0, smooth=True, p_bias=None):
        """Similarity transform (2x3, float32 numpy) taking `points1` (image) onto `points0` (template).

        Same float32 algorithm as the official implementation (centre, unbiased std, SVD of the normalised
        covariance, reflection fix, nose bias). Returns the matrix and the nose bias for the next frame.
        It always runs on the CPU: three points are not worth a device round trip.
        """
        src = torch.tensor(np.asarray(points1), dtype=torch.float32)
        dst = torch.tensor(np.asarray(points0), dtype=torch.float32)
        src_mean, dst_mean = src.mean(dim=0), dst.mean(dim=0)
        src_c, dst_c = src - src_mean, dst - dst_mean
        src_scale, dst_scale = torch.std(src_c), torch.std(dst_c)
        src_n, dst_n = src_c / src_scale, dst_c / dst_scale

        u, v = _svd_2x2(_matmul_small(src_n.T, dst_n))
        rotation = _matmul_small(v, u.T)
        if _det_2x2(rotation) < 0:
            v[:, -1] = -v[:, -1]
            rotation = _matmul_small(v, u.T)

        ratio = dst_scale / src_scale
        shift = dst_mean.reshape(2, 1) - ratio * _matmul_small(rotation, src_mean.reshape(2, 1))
        matrix = torch.cat((ratio * rotation, shift), dim=1)

        if smooth:
            bias = dst_n[2] - src_n[2]
            if p_bias is not None:
                p_bias = torch.as_tensor(p_bias, dtype=torch.float32).cpu()
                bias = p_bias * PREVIOUS_BIAS_WEIGHT + bias * (1 - PREVIOUS_BIAS_WEIGHT)
            p_bias = bias
            matrix[:, 2] = matrix[:, 2] + bias
        return matrix.numpy(), p_bias

    def next_matrix(self, landmarks3, smooth=True) -> np.ndarray:
        """Matrix for the next frame of a sequence, advancing the nose smoothing state."""
        matrix, self.p_bias = self.transformation_from_points(landmarks3, self.face_template, smooth, self.p_bias)
        return matrix

    # ------------------------------------------------------------------------------------------ align

    def align_warp_face(self, img, landmarks3, smooth=True):
        """Official API: (h, w, 3) uint8 crop (truncated, as official) and the (1, 2, 3) matrix tensor."""
        matrix = self.next_matrix(landmarks3, smooth=smooth)
        faces, matrices = self.warp_faces(np.asarray(img)[None], matrix[None])
        return faces[0].cpu().numpy(), matrices

    def warp_faces(self, frames, matrices, as_float: bool = False):
        """Warp N frames ((N, H, W, 3) uint8, or a list of (H, W, 3)) with N matrices (N, 2, 3) to template crops.

        Returns (crops (N, h, w, 3) uint8 tensor on `device` [float32 before truncation if `as_float`],
        matrices (N, 2, 3) tensor in `dtype`). Same sampling as kornia's bilinear `warp_affine` with a grey
        fill, but each frame only reads its face's footprint: the footprint is cut out with a 1-pixel grey
        border, so the fill needs no second (mask) resampling pass.
        """
        matrices_np = np.asarray(matrices, dtype=np.float32).reshape(-1, 2, 3)
        crop_w, crop_h = self.face_size
        rois, grids = [], []
        for frame, matrix in zip(frames, matrices_np, strict=True):
            height, width = frame.shape[:2]
            inverse = _invert_affine_np(matrix)
            x0, y0, x1, y1 = _clip_box(_bilinear_footprint(inverse, crop_w, crop_h, pad=0.0), width, height, margin=2)
            roi = np.asarray(frame[y0:y1, x0:x1])
            roi = cv2.copyMakeBorder(roi, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=(FILL_VALUE,) * 3)
            rois.append(torch.from_numpy(roi))
            grids.append(_sampling_grid(inverse, (crop_h, crop_w), (x0 - 1, y0 - 1), roi.shape[:2]))
        crops = []
        for roi, grid in zip(rois, grids, strict=True):
            src = roi.to(device=self.device, dtype=self.dtype).permute(2, 0, 1)[None]
            grid = torch.from_numpy(grid).to(device=self.device, dtype=self.dtype)[None]
            crops.append(F.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=True)[0])
        crops = torch.stack(crops).permute(0, 2, 3, 1)
        if not as_float:
            crops = crops.to(torch.uint8)  # truncation, as the official `.astype(np.uint8)`
        matrix_t = torch.from_numpy(matrices_np).to(device=self.device, dtype=self.dtype)
        return crops, matrix_t

    # ------------------------------------------------------------------------------------------ restore

    def restore_img(self, input_img, face, affine_matrix):
        """Official API: paste `face` ((3, h, w) in [-1, 1], crop size) back into `input_img` (H, W, 3) uint8."""
        if isinstance(affine_matrix, np.ndarray):
            affine_matrix = torch.from_numpy(affine_matrix)
        matrix = affine_matrix.reshape(1, 2, 3)
        out = self.restore_imgs(np.asarray(input_img)[None], face[None], matrix)
        return out[0]

    def restore_imgs(self, frames, faces, affine_matrices, inplace: bool = False) -> np.ndarray:
        """Paste N faces ((N, 3, h, w) in [-1, 1]) into N frames ((N, H, W, 3) uint8).

        Each face only changes the pixels inside its feathered footprint; the rest stays as it was. Returns
        new frames, or writes into `frames` (a writable uint8 array) with `inplace=True`.
        """
        out = frames if inplace else np.array(frames, copy=True)
        matrices = torch.as_tensor(affine_matrices).reshape(-1, 2, 3)
        for k in range(out.shape[0]):
            self._restore_one(out[k], faces[k], matrices[k])
        return out

    def _restore_one(self, frame: np.ndarray, face: torch.Tensor, matrix: torch.Tensor) -> None:
        """Blend one face into `frame` in place, working inside the face's region of interest.

        The official steps, each restricted to the ROI: warp the face back (grey fill outside it) and a ones
        mask (zero outside), erode the mask 2x2, erode it again by 2 * w_edge, blur it, blend, truncate.
        Both warps sample at `matrix @ (x, y, 1)` directly (float64 grid), as kornia does with float32 math.
        """
        height, width = frame.shape[:2]
        face = face.to(device=self.device, dtype=self.dtype)
        face_h, face_w = face.shape[-2:]
        frame_to_crop = matrix.reshape(2, 3).double().cpu().numpy()

        # Pixels that can receive any weight: the face rectangle (plus the bilinear fringe) in the frame.
        footprint = _bilinear_footprint(_invert_affine_np(frame_to_crop), face_w, face_h, pad=1.0)
        span = max(np.ptp(footprint[:, 0]), np.ptp(footprint[:, 1]), 1.0)
        max_edge = int(span) // EDGE_DIVISOR  # bounds w_edge, since the footprint area <= span^2
        margin = 3 * max_edge + 4  # erosion (2 w_edge) + blur radius (w_edge) + kernel fringe
        x0, y0, x1, y1 = _clip_box(footprint, width, height, margin)
        roi_hw = (y1 - y0, x1 - x0)

        # face with a 1-pixel grey border = kornia's "fill" padding; ones with zeros padding = the warped mask
        padded = F.pad(face[None], (1, 1, 1, 1), mode="constant", value=FILL_VALUE)
        face_grid = _sampling_grid(frame_to_crop, roi_hw, (-1, -1), (face_h + 2, face_w + 2), out_origin=(x0, y0))
        mask_grid = _sampling_grid(frame_to_crop, roi_hw, (0, 0), (face_h, face_w), out_origin=(x0, y0))
        inv_face = F.grid_sample(padded, torch.from_numpy(face_grid).to(self.device, self.dtype)[None],
                                 mode="bilinear", padding_mode="border", align_corners=True)[0]
        inv_face = (inv_face / 2 + 0.5).clamp(0, 1) * 255
        ones = torch.ones((1, 1, face_h, face_w), device=self.device, dtype=self.dtype)
        inv_mask = F.grid_sample(ones, torch.from_numpy(mask_grid).to(self.device, self.dtype)[None],
                                 mode="bilinear", padding_mode="zeros", align_corners=True)

        inv_mask_erosion = erode_rect(inv_mask, MASK_EROSION_PX * self.upscale_factor)  # = kornia 2x2 erosion
        pasted_face = inv_mask_erosion[0] * inv_face

        w_edge = int(torch.sum(inv_mask_erosion.float()).item() ** 0.5) // EDGE_DIVISOR
        if inv_mask_erosion.device.type == "cpu":  # OpenCV's separable erosion is the fastest on CPU (official)
            eroded = cv2.erode(inv_mask_erosion[0, 0].float().numpy(), np.ones((2 * w_edge, 2 * w_edge), np.uint8))
            inv_mask_center = torch.from_numpy(eroded).to(self.dtype)[None, None]
        else:
            inv_mask_center = erode_rect(inv_mask_erosion, 2 * w_edge)
        blur_size = 2 * w_edge + 1
        sigma = 0.3 * ((blur_size - 1) * 0.5 - 1) + 0.8
        if inv_mask_center.device.type == "cpu":
            # OpenCV's separable blur, same kernel and reflect-101 border as kornia's; kornia's CPU conv2d
            # unfolds the image once per kernel tap (a 61-tap blur of a 1080p face ROI took ~190 MB).
            blurred = cv2.GaussianBlur(inv_mask_center[0, 0].float().numpy(), (blur_size, blur_size), sigma,
                                       sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)
            soft = torch.from_numpy(blurred).to(self.dtype)[None]
        else:
            soft = kornia.filters.gaussian_blur2d(inv_mask_center, (blur_size, blur_size), (sigma, sigma))[0]

        roi_img = torch.from_numpy(np.ascontiguousarray(frame[y0:y1, x0:x1])).to(self.device, self.dtype)
        roi_img = roi_img.permute(2, 0, 1)
        blended = soft * pasted_face + (1 - soft) * roi_img
        frame[y0:y1, x0:x1] = blended.permute(1, 2, 0).to(torch.uint8).cpu().numpy()
