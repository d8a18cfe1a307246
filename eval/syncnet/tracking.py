"""Face tracks from per-frame detections, and the 224x224 mouth-region crops SyncNet sees.

Behaviour follows syncnet_python's run_pipeline: greedy IoU linking, tracks longer than `min_track`
detections, linear interpolation over gaps, median-smoothed box, crop with a grey border.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import signal
from scipy.interpolate import interp1d


@dataclass
class BoxTrack:
    """One face followed over consecutive frames: `frames` (n,) indices, `boxes` (n, 4) `[x1, y1, x2, y2]`."""

    frames: np.ndarray
    boxes: np.ndarray

    @property
    def start(self) -> int:
        return int(self.frames[0])

    @property
    def end(self) -> int:
        """Last frame, inclusive."""
        return int(self.frames[-1])


def bounding_box_iou(box_a, box_b) -> float:
    """IoU of two `[x1, y1, x2, y2]` boxes (areas without +1)."""
    inter_w = max(0.0, min(box_a[2], box_b[2]) - max(box_a[0], box_b[0]))
    inter_h = max(0.0, min(box_a[3], box_b[3]) - max(box_a[1], box_b[1]))
    inter = inter_w * inter_h
    area_a = (box_a[2] - box_a[0]) * (box_a[3] - box_a[1])
    area_b = (box_b[2] - box_b[0]) * (box_b[3] - box_b[1])
    return inter / float(area_a + area_b - inter)


def _link_one_track(detections: list[list], iou_threshold: float, max_gap: int) -> list[tuple[int, np.ndarray]]:
    """Take one greedy chain of detections out of `detections` (consumed in place)."""
    track: list[tuple[int, np.ndarray]] = []
    for faces in detections:
        for index, (frame, box) in enumerate(faces):
            if not track:
                track.append(faces.pop(index))
                break
            if frame - track[-1][0] > max_gap:
                return track
            if bounding_box_iou(box, track[-1][1]) > iou_threshold:
                track.append(faces.pop(index))
                break
    return track


def track_faces(
    detections: list[np.ndarray],
    first_frame: int,
    settings,
) -> list[BoxTrack]:
    """Tracks in one shot. `detections[k]` holds the (K, 5) boxes of frame `first_frame + k`.

    A track keeps linking the first detection whose IoU with its last box exceeds `iou_threshold`, as long as
    no more than `max_gap_frames` pass without one. Kept tracks have more than `min_track` detections and a
    mean box width or height above `min_face_size` pixels; frames between detections are interpolated.
    """
    remaining = [
        [(first_frame + k, np.asarray(row[:4], dtype=np.float64)) for row in frame_dets]
        for k, frame_dets in enumerate(detections)
    ]
    tracks = []
    while True:
        chain = _link_one_track(remaining, settings.iou_threshold, settings.max_gap_frames)
        if not chain:
            return tracks
        if len(chain) <= settings.min_track:
            continue
        frames = np.array([frame for frame, _ in chain])
        boxes = np.stack([box for _, box in chain])
        all_frames = np.arange(frames[0], frames[-1] + 1)
        filled = np.stack([interp1d(frames, boxes[:, k])(all_frames) for k in range(4)], axis=1)
        mean_size = max(np.mean(filled[:, 2] - filled[:, 0]), np.mean(filled[:, 3] - filled[:, 1]))
        if mean_size > settings.min_face_size:
            tracks.append(BoxTrack(all_frames, filled))


@dataclass
class CropWindow:
    """Smoothed crop geometry of one track: half box size `s`, centre (`x`, `y`) per frame."""

    size: np.ndarray
    x: np.ndarray
    y: np.ndarray


def smooth_track(track: BoxTrack, kernel: int) -> CropWindow:
    """Median-filtered half-size and centre (scipy's medfilt pads the ends with zeros, as the original)."""
    boxes = track.boxes
    size = np.maximum(boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]) / 2
    centre_y = (boxes[:, 1] + boxes[:, 3]) / 2
    centre_x = (boxes[:, 0] + boxes[:, 2]) / 2
    return CropWindow(*(signal.medfilt(v, kernel_size=kernel) for v in (size, centre_x, centre_y)))


def _slice_with_fill(image: np.ndarray, top: int, bottom: int, left: int, right: int, fill: int) -> np.ndarray:
    """image[top:bottom, left:right] where out-of-frame pixels take the value `fill`."""
    height, width = image.shape[:2]
    out = np.full((max(bottom - top, 0), max(right - left, 0), image.shape[2]), fill, dtype=image.dtype)
    src_t, src_b = max(top, 0), min(bottom, height)
    src_l, src_r = max(left, 0), min(right, width)
    if src_b > src_t and src_r > src_l:
        out[src_t - top : src_b - top, src_l - left : src_r - left] = image[src_t:src_b, src_l:src_r]
    return out


def crop_face(image: np.ndarray, size: float, centre_x: float, centre_y: float, settings, out_size: int) -> np.ndarray:
    """The SyncNet crop of one frame: from s above to 1.8 s below the centre, 1.4 s either side (crop_scale 0.4).

    Integer bounds are taken in the original's padded coordinates (border `int(s * (1 + 2 * crop_scale))`), so
    they match it pixel for pixel; the border itself is never materialised.
    """
    scale = settings.crop_scale
    border = int(size * (1 + 2 * scale))
    my, mx = centre_y + border, centre_x + border
    top, bottom = int(my - size), int(my + size * (1 + 2 * scale))
    left, right = int(mx - size * (1 + scale)), int(mx + size * (1 + scale))
    face = _slice_with_fill(image, top - border, bottom - border, left - border, right - border, settings.pad_value)
    if face.size == 0:
        raise ValueError(f"empty face crop (box half-size {size:.1f} at ({centre_x:.1f}, {centre_y:.1f}))")
    return cv2.resize(face, (out_size, out_size))
