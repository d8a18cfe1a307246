"""Occluder masks on real footage: how much of an occluder in front of the mouth survives the edit, how much of
the mouth is still edited, how much the edit shrinks on clips without an occluder, and what it costs.

    .venv/bin/python benchmarks/bench_occlusion.py                       # ../shared/media/corpus + demo1
    .venv/bin/python benchmarks/bench_occlusion.py --clips vr_face3,lp_d20 --frames 30 --kinds mic,pen
    .venv/bin/python benchmarks/bench_occlusion.py --frames 30 --set occlusion.hand_every=12   # a config change
    .venv/bin/python benchmarks/bench_occlusion.py --frames 30 --exposure 0.35   # dim footage, darker faces
    .venv/bin/python benchmarks/bench_occlusion.py --frames 30 --start 12 --kinds mic,pen,cup   # shot starts at the mouth
    .venv/bin/python benchmarks/bench_occlusion.py --frames 30 --kinds hand_photo --hand_photo PHOTO.jpg --lead_in 6   # a real hand, raised mid-shot

For every clip: the first `--frames` frames, the face pass (`VideoFaceProcessor`) and the edited region of each
frame (the fixed mouth mask warped back with the face's matrix). Then, per occluder kind, a composite: a
textured microphone, pen, cup or skin-coloured (wooden) pen drawn with a known pixel mask, or a real hand cut
out of `lp_d12.mp4` with the hand model's mask (with `--hand_photo`, also a hand with its palm cut out of a
photo the same way), moved across the talking mouth. The face pass and the masker
run on the composite as the pipeline would; the edit is simulated (every edited-region pixel moved by 80 grey
levels), blended with `keep_occluders`, encoded with H.264 (crf 18) and decoded. Measured on luma:

- kept: the share of occluder pixels inside the edited region within 8 grey levels of the composite;
- edited: the share of the edited region outside the occluder that still changed by more than 8 levels;
- shrink (no occluder): 1 - edited share with the masker / edited share without it, on the clip itself.

Oracle row: the same composites blended with the occluder's own pixel mask, feathered as the masker feathers
(grown by `feather` x face width, blurred over the same width): the ceiling a perfect detector reaches through
this metric. Two extra columns (labelled; the goal stays the one above):

- kept_core: kept, leaving out a 2 px band inside the occluder's edge (H.264 blocks there mix the occluder with
  the edited pixels beside it, whatever the mask);
- kept_vs_enc: kept, compared with the composite encoded the same way (crf 18) instead of the raw composite, so
  the codec's own error on the occluder's texture does not count.

`--cache DIR` keeps the face pass of every clip and composite (boxes, landmarks, matrices) between runs.

Cost: the masker's time per frame next to the face pass's (decode + detect + align, as `bench_faces.py`) on
the 1080 x 1920 demo clip, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from latentsync.faces.detector import FaceDetector  # noqa: E402
from latentsync.faces.occlusion import OccluderMasker, OcclusionPatch, edited_region, keep_occluders  # noqa: E402
from latentsync.faces.occlusion.hands import PALM, draw_hand  # noqa: E402
from latentsync.faces.settings import load_faces_config  # noqa: E402
from latentsync.faces.stored_masks import StoredMask  # noqa: E402
from latentsync.faces.video import VideoFaceProcessor  # noqa: E402
from latentsync.pipelines.conditioning import fixed_mask_rgb_u8  # noqa: E402
from latentsync.utils.media import VideoWriter, iter_frames  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "media"
CLIPS = ("vr_face1", "vr_face2", "vr_face3", "vr_face4", "vr_face5", "lp_d12", "lp_d20", "lp_src_s32",
         "st_WDA_KatieHill", "stt_andrew_clip_1", "demo1")
KINDS = ("mic", "pen", "cup", "hand", "wood_pen", "hand_photo")  # hand_photo: only with --hand_photo
EDIT_SHIFT = 80  # grey levels every edited pixel moves by in the simulated edit
TOLERANCE = 8  # grey levels: "kept its value"
INNER_LIPS = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)


def clip_path(name: str) -> Path:
    return SHARED / "demo1_video.mp4" if name == "demo1" else SHARED / "corpus" / f"{name}.mp4"


def read_frames(path: Path, count: int) -> list[np.ndarray]:
    frames = []
    for chunk in iter_frames(path, chunk_size=16):
        frames.extend(chunk)
        if len(frames) >= count:
            break
    return [np.ascontiguousarray(f) for f in frames[:count]]


@dataclass
class FaceRecord:
    """What the bench needs of an `AlignedFrame` (small enough to cache)."""

    has_face: bool
    face_box: np.ndarray | None
    landmarks: np.ndarray | None
    matrix: np.ndarray | None


def face_pass(frames, detector, cache: Path | None = None, key: str = ""):
    """[FaceRecord] per frame and the crop size; cached under `cache/key.pkl` when a cache is given."""
    path = cache / f"{key}.pkl" if cache is not None else None
    if path is not None and path.is_file():
        return pickle.loads(path.read_bytes())
    processor = VideoFaceProcessor(resolution=256, detector=detector)
    records = [FaceRecord(a.has_face, a.face_box, a.landmarks,
                          None if a.affine_matrix is None else a.affine_matrix.numpy().reshape(2, 3))
               for a in processor.process(iter(frames))]
    result = (records, processor.restorer.face_size)
    if path is not None:
        path.write_bytes(pickle.dumps(result))
    return result


def luma(frames) -> np.ndarray:
    return np.asarray(frames, np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


# ---------------------------------------------------------------------------------------------- occluders


def _texture(rgb: np.ndarray, rng: np.random.Generator, sigma: float = 6.0) -> np.ndarray:
    """Sensor-like noise and a left-to-right shading ramp, so no occluder is a flat colour."""
    h, w = rgb.shape[:2]
    ramp = np.linspace(-18, 18, w, dtype=np.float32)[None, :, None]
    return np.clip(rgb.astype(np.float32) + ramp + rng.normal(0, sigma, rgb.shape), 0, 255).astype(np.uint8)


def make_sprite(kind: str, face_w: float, rng: np.random.Generator, hand=None):
    """(rgb (h, w, 3) uint8, mask (h, w) bool, anchor (x, y) in the sprite): anchor goes to the path point."""
    u = face_w
    if kind in ("hand", "hand_photo"):
        rgb, mask, anchor, source_w = hand[kind]
        scale = u / source_w
        size = (max(2, round(rgb.shape[1] * scale)), max(2, round(rgb.shape[0] * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        return rgb, mask, (anchor[0] * scale, anchor[1] * scale)
    if kind == "mic":
        r, handle_w, handle_h = 0.2 * u, 0.1 * u, 1.0 * u
        h, w = int(2 * r + handle_h), int(2 * r) + 2
        rgb = np.zeros((h, w, 3), np.uint8)
        mask = np.zeros((h, w), np.uint8)
        cx, cy = w / 2, r
        cv2.rectangle(rgb, (int(cx - handle_w / 2), int(cy)), (int(cx + handle_w / 2), h - 1), (28, 28, 30), -1)
        cv2.rectangle(mask, (int(cx - handle_w / 2), int(cy)), (int(cx + handle_w / 2), h - 1), 1, -1)
        head = np.zeros((h, w), np.uint8)
        cv2.circle(head, (int(cx), int(cy)), int(r), 1, -1)
        grille = np.full((h, w, 3), (45, 45, 50), np.uint8)
        step = max(2, int(0.04 * u))
        grille[::step] = (95, 95, 100)
        grille[:, ::step] = (95, 95, 100)
        rgb[head > 0] = grille[head > 0]
        mask |= head
        return _texture(rgb, rng), mask > 0, (cx, cy)
    if kind in ("pen", "wood_pen"):
        length, width = 1.1 * u, max(3.0, 0.07 * u)
        side = int(length) + 4
        rgb = np.zeros((side, side, 3), np.uint8)
        mask = np.zeros((side, side), np.uint8)
        c = side / 2
        box = cv2.boxPoints(((c, c), (length, width), -30.0)).astype(np.int32)
        colour = (35, 70, 170) if kind == "pen" else (205, 165, 125)
        cv2.fillConvexPoly(rgb, box, colour)
        cv2.fillConvexPoly(mask, box, 1)
        tip = cv2.boxPoints(((c + 0.4 * length * np.cos(np.radians(30)), c - 0.4 * length * np.sin(np.radians(30))),
                             (0.2 * length, width), -30.0)).astype(np.int32)
        cv2.fillConvexPoly(rgb, tip, (200, 200, 205) if kind == "pen" else (60, 60, 60))
        return _texture(rgb, rng), mask > 0, (c, c)
    if kind == "cup":
        cw, ch = 0.55 * u, 0.65 * u
        h, w = int(ch) + 2, int(cw * 1.4) + 2
        rgb = np.zeros((h, w, 3), np.uint8)
        mask = np.zeros((h, w), np.uint8)
        x0 = int(0.05 * w)
        cv2.rectangle(rgb, (x0, 0), (x0 + int(cw), h - 1), (236, 234, 228), -1)
        cv2.rectangle(mask, (x0, 0), (x0 + int(cw), h - 1), 1, -1)
        cv2.rectangle(rgb, (x0, int(0.35 * h)), (x0 + int(cw), int(0.5 * h)), (190, 40, 45), -1)
        centre = (x0 + int(cw), int(0.45 * h))
        axes = (int(0.22 * cw), int(0.22 * ch))
        cv2.ellipse(rgb, centre, axes, 0, -90, 90, (236, 234, 228), max(2, int(0.06 * u)))
        cv2.ellipse(mask, centre, axes, 0, -90, 90, 1, max(2, int(0.06 * u)))
        return _texture(rgb, rng, 4.0), mask > 0, (x0 + cw / 2, 0.0)
    raise ValueError(kind)


def real_hand(detector) -> tuple:
    """A hand from lp_d12.mp4, cut out with the hand model's landmarks (the frame where it is found best)."""
    import mediapipe as mp

    frames = read_frames(clip_path("lp_d12"), 120)
    best = None
    with mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=1, model_complexity=0,
                                  min_detection_confidence=0.2) as hands:
        for frame in frames[::3]:
            pad = 128  # the hand is cut by the frame's lower-left corner: pad so the palm detector sees one
            padded = cv2.copyMakeBorder(frame, 0, pad, pad, 0, cv2.BORDER_CONSTANT, value=0)
            result = hands.process(padded)
            if not result.multi_hand_landmarks:
                continue
            score = result.multi_handedness[0].classification[0].score
            if best is None or score > best[0]:
                pts = np.array([(p.x * padded.shape[1] - pad, p.y * padded.shape[0])
                                for p in result.multi_hand_landmarks[0].landmark])
                best = (score, frame, pts)
    if best is None:
        raise RuntimeError("the hand model found no hand in lp_d12.mp4")
    _, frame, pts = best
    rgb, mask, (x0, y0) = cut_out_hand(frame, pts)
    face = FaceDetector(backend="mediapipe") if detector is None else detector
    box = face.detect(frame).box
    anchor = (float(pts[8, 0] - x0), float(pts[8, 1] - y0))  # the index fingertip goes along the path
    return rgb, mask, anchor, float(box[2] - box[0])


def cut_out_hand(frame: np.ndarray, pts: np.ndarray) -> tuple:
    """The hand drawn from its 21 landmarks as the masker draws it (not grown): (rgb, mask) of its box, and the
    box's top-left corner in the frame."""
    mask = np.zeros(frame.shape[:2], np.uint8)
    draw_hand(mask, pts, load_faces_config().occlusion.finger_width, 0.0)
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    return frame[y0:y1, x0:x1].copy(), mask[y0:y1, x0:x1] > 0, (x0, y0)


PHOTO_PALM = 0.45  # a hand photographed without a face: its palm (wrist to middle-finger base) is made this x the
# clip's face width (landmark box), as the hand model measures hands held to faces in photos (0.39-0.47)


def photo_hand(path: Path, detector) -> tuple:
    """A real hand in a still photo (`--hand_photo`), cut out with the hand model's landmarks. Held to a face in
    the photo, it keeps its size against that face, and a hand over the photo's mouth is placed as it lay there (the
    anchor is the photo's mouth centre); in a photo without a face, its palm is made `PHOTO_PALM` x the clip's face
    width. Else the palm's centre goes over the mouth."""
    import mediapipe as mp

    bgr = cv2.imread(str(path))
    if bgr is None:
        raise SystemExit(f"--hand_photo: cannot read {path} as an image")
    frame = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    with mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=1, model_complexity=1) as hands:
        result = hands.process(frame)
    if not result.multi_hand_landmarks:
        raise SystemExit(f"--hand_photo: the hand model finds no hand in {path}")
    pts = np.array([(p.x * frame.shape[1], p.y * frame.shape[0]) for p in result.multi_hand_landmarks[0].landmark])
    rgb, mask, (x0, y0) = cut_out_hand(frame, pts)
    x1, y1 = x0 + mask.shape[1], y0 + mask.shape[0]
    face = detector.detect(frame)
    centre, source_w = pts[list(PALM)].mean(axis=0), float(np.linalg.norm(pts[9] - pts[0])) / PHOTO_PALM
    if face is not None and len(face.landmarks) >= 468:  # the face's width as the clip's: its landmark box
        mouth, source_w = face.landmarks[list(INNER_LIPS)].mean(axis=0), float(np.ptp(face.landmarks[:, 0]))
        if x0 <= mouth[0] < x1 and y0 <= mouth[1] < y1:
            centre = mouth
    anchor = (float(centre[0] - x0), float(centre[1] - y0))
    return rgb, mask, anchor, source_w


def mouth_path(aligned, count: int) -> list[tuple[float, float, float]]:
    """(x, y, face width) of the mouth centre per frame (inner lips of the clean face pass)."""
    out, last = [], None
    for a in aligned[:count]:
        if a.landmarks is not None and len(a.landmarks) >= 468:
            lips = a.landmarks[list(INNER_LIPS)]
            last = (float(lips[:, 0].mean()), float(lips[:, 1].mean()), float(a.face_box[2] - a.face_box[0]))
        out.append(last)
    first = next((p for p in out if p is not None), None)
    return [p if p is not None else first for p in out]


def composite(frames, path, sprite, kind: str, lead_in: int = 0):
    """Frames with the sprite moved across the mouth, and the occluder's own pixel mask per frame; with `lead_in`,
    the sprite comes into sight only after that many frames (and crosses the mouth in the frames left)."""
    rgb, mask, anchor = sprite
    out, masks = [], []
    n = len(frames) - lead_in
    for k, (frame, point) in enumerate(zip(frames, path, strict=True)):
        if k < lead_in:
            out.append(frame.copy())
            masks.append(np.zeros(frame.shape[:2], bool))
            continue
        t = (k - lead_in) / max(1, n - 1)
        mx, my, fw = point
        dx = (-0.45 + 0.9 * t) * fw
        dy = {"mic": 0.05, "cup": -0.03, "hand": 0.0}.get(kind, 0.0) * fw + 0.06 * fw * np.sin(np.pi * t)
        x0, y0 = int(round(mx + dx - anchor[0])), int(round(my + dy - anchor[1]))
        img, occ = frame.copy(), np.zeros(frame.shape[:2], bool)
        h, w = frame.shape[:2]
        sx0, sy0 = max(0, -x0), max(0, -y0)
        fx0, fy0 = max(0, x0), max(0, y0)
        fx1, fy1 = min(w, x0 + rgb.shape[1]), min(h, y0 + rgb.shape[0])
        if fx1 > fx0 and fy1 > fy0:
            sub = mask[sy0 : sy0 + fy1 - fy0, sx0 : sx0 + fx1 - fx0]
            img[fy0:fy1, fx0:fx1][sub] = rgb[sy0 : sy0 + fy1 - fy0, sx0 : sx0 + fx1 - fx0][sub]
            occ[fy0:fy1, fx0:fx1] = sub
        out.append(img)
        masks.append(occ)
    return out, masks


# ---------------------------------------------------------------------------------------------- measuring


def oracle_patch(occluder: np.ndarray, face_width: float, settings) -> OcclusionPatch | None:
    """The occluder's own pixel mask, feathered as the masker feathers (grown by `feather` x W, then blurred)."""
    if not occluder.any():
        return None
    radius = max(1, int(round(settings.feather * face_width)))
    ys, xs = np.nonzero(occluder)
    h, w = occluder.shape
    x0, y0 = max(0, xs.min() - 2 * radius - 2), max(0, ys.min() - 2 * radius - 2)
    x1, y1 = min(w, xs.max() + 2 * radius + 3), min(h, ys.max() + 2 * radius + 3)
    binary = occluder[y0:y1, x0:x1].astype(np.uint8) * 255
    grown = cv2.dilate(binary, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)))
    soft = cv2.GaussianBlur(grown.astype(np.float32) / 255.0, (2 * radius + 1, 2 * radius + 1), radius / 2)
    soft = np.minimum(soft, 1.0)
    soft[binary > 0] = 1.0
    return OcclusionPatch((int(x0), int(y0), int(x1), int(y1)), soft)


class Oracle:
    """Stands in for the masker: each frame's true occluder mask, feathered (see `oracle_patch`)."""

    def __init__(self, occluders, settings):
        self.occluders, self.settings, self.k = occluders, settings, 0

    def patch(self, frame, face_box, landmarks):
        occluder = self.occluders[self.k]
        self.k += 1
        return oracle_patch(occluder, float(face_box[2] - face_box[0]), self.settings)

    def reset(self):
        pass

    def revisions(self):
        return []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def simulate(frames, aligned, face_size, mode: str, settings, occluders=None):
    """Masker (or, for mode "oracle", the true occluder mask) over the frames, the simulated edit, the blend;
    returns outputs, edited regions, masks, seconds. Masks the masker grows later (`revisions`) are used, as the
    face pass does."""
    fixed = fixed_mask_rgb_u8(256, load_faces_config().fixed_mask)[..., 0]
    regions, masks, seconds, called = [], [], 0.0, []
    with (Oracle(occluders, settings) if mode == "oracle" else OccluderMasker(mode, settings)) as masker:
        for k, (frame, a) in enumerate(zip(frames, aligned, strict=True)):
            if not a.has_face:
                regions.append(np.zeros(frame.shape[:2], bool))
                masks.append(None)
                masker.reset()
                if mode == "oracle":
                    masker.k += 1
                continue
            start = time.perf_counter()
            masks.append(masker.patch(frame, a.face_box, a.landmarks))
            called.append(k)
            for back, patch in masker.revisions():
                masks[called[-1 - back]] = patch
            seconds += time.perf_counter() - start
            regions.append(edited_region(frame.shape[:2], a.matrix, face_size, fixed))
    outputs = []
    for frame, region, patch in zip(frames, regions, masks, strict=True):
        shift = np.where(frame < 128, EDIT_SHIFT, -EDIT_SHIFT).astype(np.int16)
        restored = np.where(region[..., None], frame.astype(np.int16) + shift, frame).astype(np.uint8)
        outputs.append(keep_occluders(frame, restored, patch) if region.any() else frame)
    return outputs, regions, masks, seconds


def underexposed(frames, exposure: float, workdir: Path) -> list[np.ndarray]:
    """The frames as a darker shot would record them: light scaled by `exposure`, sensor noise (sigma 3 levels),
    then H.264 at crf 23 as a phone stores them. Stands in for dim rooms and for darker skin than the corpus has."""
    rng = np.random.default_rng(0)
    dark = [np.clip(f.astype(np.float32) * exposure + rng.normal(0, 3.0, f.shape), 0, 255).astype(np.uint8)
            for f in frames]
    path = workdir / "dark.mp4"
    with VideoWriter(path, 25.0, crf=23) as writer:
        writer.write(np.stack(dark))
    decoded = np.concatenate(list(iter_frames(path, chunk_size=16)))[: len(frames)]
    path.unlink()
    return [np.ascontiguousarray(f) for f in decoded]


def encode_decode(frames, workdir: Path) -> np.ndarray:
    path = workdir / "out.mp4"
    with VideoWriter(path, 25.0, crf=18) as writer:
        writer.write(np.stack(frames))
    decoded = np.concatenate(list(iter_frames(path, chunk_size=16)))[: len(frames)]
    path.unlink()
    return decoded


def measure(originals, outputs, regions, occluders, workdir: Path, encoded_originals=None) -> dict:
    """kept (occluder pixels in the edited region unchanged) and edited (rest of the region changed) shares;
    kept_core leaves out a 2 px band inside the occluder's edge, kept_vs_enc compares with `encoded_originals`
    (the composite through the same codec) instead of the raw composite."""
    decoded = encode_decode(outputs, workdir)
    core_kernel = np.ones((5, 5), np.uint8)
    counts = dict.fromkeys(("kept", "occ", "edited", "free", "core_kept", "core", "enc_kept"), 0)
    for k, (orig, dec, region, occ) in enumerate(zip(originals, decoded, regions, occluders, strict=True)):
        out = luma(dec)
        diff = np.abs(out - luma(orig))
        inside = region & occ
        free = region & ~occ
        core = inside & (cv2.erode(occ.astype(np.uint8), core_kernel) > 0)
        counts["kept"] += int((diff[inside] <= TOLERANCE).sum())
        counts["occ"] += int(inside.sum())
        counts["core_kept"] += int((diff[core] <= TOLERANCE).sum())
        counts["core"] += int(core.sum())
        counts["edited"] += int((diff[free] > TOLERANCE).sum())
        counts["free"] += int(free.sum())
        if encoded_originals is not None and inside.any():
            counts["enc_kept"] += int((np.abs(out - luma(encoded_originals[k]))[inside] <= TOLERANCE).sum())

    def share(a, b):
        return counts[a] / counts[b] if counts[b] else float("nan")

    result = {"kept": share("kept", "occ"), "edited": share("edited", "free"), "kept_core": share("core_kept", "core"),
              "occluder_px_in_region": counts["occ"]}
    if encoded_originals is not None:
        result["kept_vs_enc"] = share("enc_kept", "occ")
    return result


def stored_sizes(masks) -> dict:
    """What the face pass's track keeps of these masks for the run (`StoredMask`): how many, their bytes as uint8
    and as stored (compressed)."""
    stored = [StoredMask.of_mask(p.box, p.mask) for p in masks if p is not None]
    return {"masks": len(stored), "raw_bytes": sum(m.shape[0] * m.shape[1] for m in stored),
            "stored_bytes": sum(len(m.data) for m in stored)}


def clean_shrink(frames, aligned, face_size, mode, settings, workdir) -> dict:
    outputs, regions, masks, seconds = simulate(frames, aligned, face_size, mode, settings)
    covered = [float((m.full(r.shape) * r).sum() / max(1, r.sum())) for m, r in zip(masks, regions, strict=True)
               if m is not None]
    result = {"frames_with_mask": len(covered), "mask_share_of_region": float(np.sum(covered) / len(frames)),
              "ms_per_frame": 1000 * seconds / len(frames)}
    if covered:  # only then does the output differ from the unmasked edit: measure both through the codec
        with_mask = measure(frames, outputs, regions, [np.zeros(r.shape, bool) for r in regions], workdir)
        plain, _, _, _ = simulate(frames, aligned, face_size, "off", settings)
        without = measure(frames, plain, regions, [np.zeros(r.shape, bool) for r in regions], workdir)
        result["shrink"] = 1 - with_mask["edited"] / without["edited"]
    else:
        result["shrink"] = 0.0
    return result


def cost_1080p(detector, settings, frames_count: int) -> dict:
    """Face pass (decode + detect + align) and masker per frame on demo1, in the same run."""
    from latentsync.faces.face_pass import track_faces
    from latentsync.utils.media import VideoReader

    video = clip_path("demo1")
    with VideoReader(video) as reader:
        count = min(frames_count, len(reader))
        start = time.perf_counter()
        track_faces(reader, count, 256, detector=detector, progress=False)
        face_ms = 1000 * (time.perf_counter() - start) / count
    frames = read_frames(video, count)
    aligned, _ = face_pass(frames, detector)
    result = {"frames": count, "face_pass_ms": face_ms}
    for mode in ("hands", "auto"):
        with OccluderMasker(mode, settings) as masker:
            start = time.perf_counter()
            for frame, a in zip(frames, aligned, strict=True):
                if a.has_face:
                    masker.patch(frame, a.face_box, a.landmarks)
            ms = 1000 * (time.perf_counter() - start) / count
        result[f"{mode}_ms"] = ms
        result[f"{mode}_share_of_face_pass"] = ms / face_ms
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", default=",".join(CLIPS))
    parser.add_argument("--kinds", default=",".join(k for k in KINDS if k != "hand_photo"))
    parser.add_argument("--frames", type=int, default=50, help="frames per clip (from the start)")
    parser.add_argument("--cost_frames", type=int, default=150, help="demo1 frames for the cost (0 = skip)")
    parser.add_argument("--mode", default="auto", choices=["auto", "hands"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=int, default=0,
                        help="each composite's shot starts at this frame of the occluder's path (the frames before "
                        "are cut off, its face pass runs on the rest): 12 of 30 starts with the object at the mouth, "
                        "as after a cut to someone holding a microphone")
    parser.add_argument("--lead_in", type=int, default=0,
                        help="the occluder comes into sight only after this many frames of the shot (as a hand "
                        "raised to the face mid-shot), then crosses the mouth in the frames left")
    parser.add_argument("--exposure", type=float, default=1.0,
                        help="scale every clip's light by this (with sensor noise and a phone's H.264) before "
                        "anything else: 0.35 gives dim footage, and faces darker than the corpus has")
    parser.add_argument("--hand_photo", default=None,
                        help="a still photo of a hand held to a face (with its palm in sight): adds the kind "
                        "hand_photo, that hand cut out and moved across every clip's mouth (the corpus's only real "
                        "hand, lp_d12's, is fingers at the frame's edge, without the palm the hand model needs)")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--cache", default=None, help="keep face-pass results here between runs (a folder)")
    parser.add_argument("--no_oracle", action="store_true", help="skip the oracle rows (true occluder masks)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="faces config override (repeatable), e.g. occlusion.hand_every=12 (the --cache does not "
                        "know overrides: give it only occlusion.* keys, or a fresh cache)")
    args = parser.parse_args()
    config = load_faces_config(overrides=args.set)
    settings = config.occlusion
    cache = Path(args.cache) if args.cache else None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
    results = {"settings": settings.__dict__, "clips": {}}
    with FaceDetector(backend="mediapipe", config=config) as detector, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        hand = {"hand": real_hand(detector) if "hand" in args.kinds.split(",") else None,
                "hand_photo": photo_hand(Path(args.hand_photo), detector) if args.hand_photo else None}
        if "hand_photo" in args.kinds.split(",") and not args.hand_photo:
            raise SystemExit("the kind hand_photo needs --hand_photo PATH")

        def shoot(frames):  # the scene (clip and occluder) as the camera records it
            return frames if args.exposure == 1 else underexposed(frames, args.exposure, workdir)

        for name in args.clips.split(","):
            source = read_frames(clip_path(name), args.frames)
            key = f"{name}_{args.frames}" + (f"_x{args.exposure:g}" if args.exposure != 1 else "")
            frames = shoot(source)
            aligned, face_size = face_pass(frames, detector, cache, key)
            row = {"clean": clean_shrink(frames, aligned, face_size, args.mode, settings, workdir)}
            path = mouth_path(aligned, len(frames))
            if path[0] is None:
                results["clips"][name] = row
                continue
            for kind in args.kinds.split(","):
                rng = np.random.default_rng((args.seed, CLIPS.index(name) if name in CLIPS else 99, KINDS.index(kind)))
                sprite = make_sprite(kind, path[0][2], rng, hand=hand)
                comp, occluders = composite(source, path, sprite, kind, args.lead_in)
                comp, occluders = shoot(comp[args.start :]), occluders[args.start :]
                shot = f"{key}_{kind}_{args.seed}" + (f"_from{args.start}" if args.start else "")
                shot += f"_lead{args.lead_in}" if args.lead_in else ""
                if kind == "hand_photo":
                    shot += f"_{Path(args.hand_photo).stem}"
                comp_aligned, comp_size = face_pass(comp, detector, cache, shot)
                encoded = encode_decode(comp, workdir)
                outputs, regions, masks, seconds = simulate(comp, comp_aligned, comp_size, args.mode, settings)
                row[kind] = measure(comp, outputs, regions, occluders, workdir, encoded)
                row[kind]["ms_per_frame"] = 1000 * seconds / len(comp)
                row[kind]["frames_with_face"] = sum(a.has_face for a in comp_aligned)
                row[kind]["stored"] = stored_sizes(masks)
                if not args.no_oracle:
                    outputs, regions, _, _ = simulate(comp, comp_aligned, comp_size, "oracle", settings, occluders)
                    row[f"oracle_{kind}"] = measure(comp, outputs, regions, occluders, workdir, encoded)
            results["clips"][name] = row
            print(name, json.dumps(row), flush=True)
        if args.cost_frames:
            results["cost_1080p"] = cost_1080p(detector, settings, args.cost_frames)
            print("cost", json.dumps(results["cost_1080p"]), flush=True)
    kinds = args.kinds.split(",")
    summary = summarise(results["clips"], kinds + ([] if args.no_oracle else [f"oracle_{k}" for k in kinds]))
    results["summary"] = summary
    print(json.dumps(summary, indent=2))
    print(markdown_table(results["clips"], summary, kinds))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=float))


def summarise(clips: dict, kinds) -> dict:
    """Pixel-weighted kept share per kind over all clips; mean and worst edited share; worst clean shrink."""
    out = {}
    for kind in kinds:
        rows = [r[kind] for r in clips.values() if kind in r and r[kind]["occluder_px_in_region"] > 0]
        if not rows:
            continue
        weights = np.array([r["occluder_px_in_region"] for r in rows], float)
        kept = np.array([r["kept"] for r in rows])
        edited = np.array([r["edited"] for r in rows])
        out[kind] = {"kept_all_pixels": float((kept * weights).sum() / weights.sum()), "kept_worst_clip": float(kept.min()),
                     "edited_mean": float(edited.mean()), "edited_worst_clip": float(edited.min()), "clips": len(rows)}
        for extra in ("kept_core", "kept_vs_enc"):
            values = np.array([r.get(extra, np.nan) for r in rows])
            out[kind][f"{extra}_all_pixels"] = float(np.nansum(values * weights) / weights[~np.isnan(values)].sum())
    stored = [r[kind]["stored"] for r in clips.values() for kind in kinds if "stored" in r.get(kind, {})]
    out["stored_masks"] = {key: sum(s[key] for s in stored) for key in ("masks", "raw_bytes", "stored_bytes")}
    shrink = [r["clean"]["shrink"] for r in clips.values()]
    out["clean"] = {"shrink_worst_clip": float(max(shrink)), "shrink_mean": float(np.mean(shrink)), "clips": len(shrink)}
    return out


def _pct(value, digits: int = 0) -> str:
    return "–" if value is None or np.isnan(value) else f"{100 * value:.{digits}f} %"


def markdown_table(clips: dict, summary: dict, kinds) -> str:
    """Per clip: shrink, and kept / edited per kind (oracle in brackets when measured); then the summary rows."""
    header = "| clip | shrink, no occluder | " + " | ".join(f"{k} kept / edited [oracle]" for k in kinds) + " |"
    lines = [header, "| --- | ---: | " + " | ".join("---:" for _ in kinds) + " |"]
    for name, row in clips.items():
        cells = []
        for kind in kinds:
            r, o = row.get(kind), row.get(f"oracle_{kind}")
            cell = "–" if r is None else f"{_pct(r['kept'])} / {_pct(r['edited'])}"
            if o is not None:
                cell += f" [{_pct(o['kept'])} / {_pct(o['edited'])}]"
            cells.append(cell)
        lines.append(f"| {name} | {_pct(row['clean']['shrink'], 1)} | " + " | ".join(cells) + " |")
    for label, key, fmt in (("kept (pixel-weighted) / edited (mean)", "kept_all_pixels", "main"),
                            ("kept_core (2 px edge band out)", "kept_core_all_pixels", "one"),
                            ("kept_vs_enc (vs encoded composite)", "kept_vs_enc_all_pixels", "one")):
        cells = []
        for kind in kinds:
            r, o = summary.get(kind), summary.get(f"oracle_{kind}")
            if r is None:
                cells.append("–")
                continue
            if fmt == "main":
                cell = f"{_pct(r[key])} / {_pct(r['edited_mean'])} (worst {_pct(r['kept_worst_clip'])} / "
                cell += f"{_pct(r['edited_worst_clip'])})"
                if o is not None:
                    cell += f" [{_pct(o[key])} / {_pct(o['edited_mean'])}]"
            else:
                cell = _pct(r.get(key)) + (f" [{_pct(o.get(key))}]" if o is not None else "")
            cells.append(cell)
        clean = summary["clean"]
        first = (f"mean {_pct(clean['shrink_mean'], 1)}, worst {_pct(clean['shrink_worst_clip'], 1)}"
                 if fmt == "main" else "")
        lines.append(f"| **all clips**: {label} | {first} | " + " | ".join(cells) + " |")
    stored = summary.get("stored_masks", {})
    if stored.get("masks"):
        lines.append(f"\nOccluder masks as the face pass's track keeps them: {stored['masks']} masks, "
                     f"{stored['raw_bytes'] / stored['masks'] / 1e3:.1f} kB a mask as uint8, "
                     f"{stored['stored_bytes'] / stored['masks'] / 1e3:.1f} kB stored.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
