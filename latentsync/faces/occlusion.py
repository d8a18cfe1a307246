"""Occluders in front of the lower face: where a hand or an object covers the edited mouth region, keep the original.

Interface (what the pipeline calls, once per frame of the edited face, frames in order):

    from latentsync.faces.occlusion import OccluderMasker, keep_occluders

    masker = OccluderMasker("auto", faces_config.occlusion)   # mode: auto | hands | off (config: a FacesConfig)
    mask = masker(frame_rgb_uint8, face_box, landmarks)   # (H, W) float32 in [0, 1], or None (nothing found)
    for back, patch in masker.revisions():                 # an object found now also grows the masks of up to
        ...                                                # `look_back` earlier frames: frame (this - back)
    out = keep_occluders(original, restored, mask)         # out = original * m + restored * (1 - m), once final
    masker.reset()                                         # at every shot cut (and when the face track changes)
    masker.close()

- `face_box` is the face's landmark box (x1, y1, x2, y2) in frame pixels (`AlignedFrame.face_box`),
  `landmarks` its (N, 2) landmarks in frame pixels (`AlignedFrame.landmarks`). Frames without a face: do not
  call it (or pass `face_box=None`, which returns None and lets the fade-out state decay).
- `masker.patch(...)` returns the same result as an `OcclusionPatch` (a box and the mask inside it), which is
  all that is non-zero; `keep_occluders` takes either and then only touches the box (cheap at 1080p).
- 1 means "something covers the face here: keep the original pixels". The mask is feathered at its edge
  (grown by `feather` first, so the occluder itself stays at 1; the colour cue's edge, found on the coarse
  analysis grid, is first snapped to the frame's own edges by a guided filter, `refine`) and steady in time:
  each frame's mask is `max(new, decay x previous)`, so a leaving occluder fades out, and a frame that finds
  under `hold` of the last frame's occluder (a detection dropout) also keeps the last frame's detection whole.

Two cues, both computed only in a region around the lower face, at `analysis_width` pixels wide:

- **Hands** (`hands`, `auto`): MediaPipe Hands (palm detector + 21-point hand landmarks, the `hand_landmark`
  and `palm_detection` models shipped inside the mediapipe wheel) on a search region around and below the face
  (hands arrive from there). While no hand is in sight the palm detector runs only every `hand_every`-th frame
  (it costs ~9 ms on a CPU core); once a hand is found it is tracked on every frame, and tracked back over the
  frames the palm detector skipped right before (up to `look_back`, `revisions`). Its pixels: the palm's
  convex hull plus a capsule per finger, grown a little. A hand counts only with its fingers over the face (a neck
  can read as a hand), and the palm detector also fires on faces: a small "hand" whose wrist lies on the face's
  edge is the face itself and is dropped (`not_the_face`).
- **Colour** (`auto` only): objects that are neither skin nor lips. The face's own colour is sampled in the
  same frame on the cheeks and nose (the landmark hull, inset, above the nose tip: a mouth occluder rarely
  covers them); pixels whose r, g chromaticity is far from it, that are far less saturated (grey, black,
  white, metal), or too dark for a colour, are candidates. The nose's underside (nostrils) never is. The lips
  and the open mouth: the masker learns the shot's lip, teeth and cavity colours where nothing covers them
  (state reset at `reset()`; after its first frames, an object that reaches the lips before it is found
  teaches it nothing: `coming_in`); once it has seen `mouth_frames` frames, a pixel there is a candidate when it is
  none of those colours (before that, the lip ring has a per-frame colour model and the open mouth is never a
  candidate). Candidates count only on the face, a thin margin and below the chin, in pieces big enough on
  the lower face; from there an object is followed only over its own colours (those seen where it lies on the
  lower face), and beyond the face over pixels unlike the background sampled beside the cheeks; parts of
  other colours join it (a band inside its outline, a tip past an elongated object's end, even one as pale as
  the face's sheen or over the nose's underside); a closing bridges
  the pieces; below the chin it is kept only straight under where it lies higher up (a handle, not the clothes
  of its colour beside it: `chin_spread`). An object found on the lower face for the first time is followed back, in its own colours and
  from where it lies, over up to `look_back` earlier frames (it came in from beside the jaw or below the chin,
  where alone it is not taken for an occluder): `revisions()` gives those frames' grown masks, so a caller that
  uses a frame's mask `look_back` frames after it (the face pass does) misses nothing. Forwards, an object kept
  whole for `carry_after` frames in a row that slides off the lower face is followed from where it was (in the
  frame, or moved with the face) for up to `carry_frames` frames (a false find is brief: never carried). While nothing is found (and once the shot's mouth
  colours are learnt) it runs on every `colour_every`-th frame only: an object coming in on a skipped frame is
  found in a later one and followed back over the skipped frames like any other (the look back). It catches black,
  grey, white, metal and coloured objects (microphones, pens, cups); it cannot see skin-coloured objects (a
  wooden or beige pen, a hand without the hand model), cannot follow an object beyond the face over a
  background of the same colour, and does not know a dark full beard from a dark object (see docs/faces.md
  "Occlusion" for the measurements).

The colour cue needs to know where the inner lips are: it runs for the 468-point mediapipe mesh and 68-point
layouts; for other landmark layouts `auto` falls back to hands only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from .settings import OCCLUSION_MODES, OcclusionSettings, load_faces_config

# Inner-lip ring per landmark count (the open mouth: teeth and cavity are not occluders).
INNER_LIPS = {
    468: (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95),
    478: (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95),
    68: (60, 61, 62, 63, 64, 65, 66, 67),
}
OUTER_LIPS = {
    468: (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146),
    478: (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146),
    68: tuple(range(48, 60)),
}
# Nose tip per landmark count: colour occluders are only seeded below it (eyes and brows are dark, not occluders).
NOSE_TIP = {468: 1, 478: 1, 68: 30}
# The underside of the nose (tip, alae, nostrils): dark nostrils and their shade are not occluders.
NOSE_BOTTOM = {
    468: (1, 2, 97, 326, 98, 327, 64, 294, 48, 278, 219, 439, 240, 460, 75, 305, 79, 309, 20, 250, 94, 19),
    478: (1, 2, 97, 326, 98, 327, 64, 294, 48, 278, 219, 439, 240, 460, 75, 305, 79, 309, 20, 250, 94, 19),
    68: (30, 31, 32, 33, 34, 35),
}
# Regions this many analysis widths wide or more are analysed in whole pixel blocks (`_analysis_grid`).
WHOLE_BLOCKS_FROM = 4
# An end part (`_with_end_parts`) lies mostly (this share of its pixels) past the object's end, within this many
# half-widths of its axis.
END_SHARE, END_WIDTH = 0.6, 1.5
# `_fine_mask`: the found pixels, upscaled linearly to the finer grid, stay found where above this (all but the
# outer quarter of an analysis pixel at their edge), whatever the guided filter says.
FOUND_CORE = 0.75
# MediaPipe hand: the palm polygon and the five finger chains (landmark 0 is the wrist).
PALM = (0, 1, 2, 5, 9, 13, 17)
FINGERS = ((1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))


@dataclass
class OcclusionPatch:
    """The non-zero part of an occluder mask: `mask` (h, w) float32 covers frame[y0:y1, x0:x1]."""

    box: tuple[int, int, int, int]  # (x0, y0, x1, y1), exclusive end, inside the frame
    mask: np.ndarray

    def full(self, frame_hw: tuple[int, int]) -> np.ndarray:
        """The whole-frame (H, W) float32 mask."""
        out = np.zeros(frame_hw, dtype=np.float32)
        x0, y0, x1, y1 = self.box
        out[y0:y1, x0:x1] = self.mask
        return out


def keep_occluders(original: np.ndarray, restored: np.ndarray, mask) -> np.ndarray:
    """out = original * m + restored * (1 - m), per pixel: the original wherever something covers the face.

    `original`, `restored`: (H, W, 3) uint8 frames (or (N, H, W, 3) with an (N, H, W) mask); `mask`: a
    full-frame float mask, an `OcclusionPatch` (only its box is blended), or None (returns `restored`).
    Pixels where m == 1 are exactly the original, where m == 0 exactly the restored frame.
    """
    if mask is None:
        return restored
    if isinstance(mask, OcclusionPatch):
        out = np.array(restored, copy=True)
        x0, y0, x1, y1 = mask.box
        out[y0:y1, x0:x1] = keep_occluders(original[y0:y1, x0:x1], restored[y0:y1, x0:x1], mask.mask)
        return out
    m = np.asarray(mask, dtype=np.float32)[..., None]
    blended = original.astype(np.float32) * m + restored.astype(np.float32) * (1.0 - m)
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def edited_region(frame_hw: tuple[int, int], affine_matrix, face_size: tuple[int, int],
                  fixed_mask_u8: np.ndarray) -> np.ndarray:
    """(H, W) bool: the frame pixels the generated mouth can change (the fixed mask's regenerated part, 0 in the
    mask) warped back into the frame with the face's image -> crop matrix (`AlignedFrame.affine_matrix`).

    `face_size` is the crop's (w, h) (`AlignRestore.face_size`); `fixed_mask_u8` the (R, R) mask (1 = keep),
    e.g. `latentsync.pipelines.conditioning.fixed_mask_rgb_u8(R, fixed_mask)[..., 0]`. For measuring and debug overlays.
    """
    matrix = np.asarray(affine_matrix, dtype=np.float64).reshape(2, 3)
    edit = (fixed_mask_u8 < 128).astype(np.uint8) * 255
    edit = cv2.resize(edit, face_size, interpolation=cv2.INTER_NEAREST)
    height, width = frame_hw
    back = cv2.warpAffine(edit, matrix, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return back >= 128


# ---------------------------------------------------------------------------------------------- geometry


def _roi(box, widen: float, top: float, bottom: float, frame_hw) -> tuple[int, int, int, int] | None:
    """Integer (x0, y0, x1, y1) from a landmark box: widened by widen x W, from top x H to bottom x H below."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    height, width = frame_hw
    rx0, ry0 = max(0, int(np.floor(x1 - widen * w))), max(0, int(np.floor(y1 + top * h)))
    rx1, ry1 = min(width, int(np.ceil(x2 + widen * w))), min(height, int(np.ceil(y2 + bottom * h)))
    if rx1 - rx0 < 4 or ry1 - ry0 < 4:
        return None
    return rx0, ry0, rx1, ry1


def _analysis_grid(region: tuple[int, int, int, int], analysis_width: int):
    """(region, (h, w)): the region and the size it is analysed at, `analysis_width` wide. A region k >=
    `WHOLE_BLOCKS_FROM` times that wide (k its width over the analysis width, rounded) is trimmed by under k pixels
    per axis so that k x k blocks tile it: the area resize then averages whole blocks, OpenCV's fast path, 3-4x
    faster (a 600 px wide face at 1080p: 0.37 against 1.29 ms a frame), at an analysis width within 12 % of the
    setting."""
    x0, y0, x1, y1 = region
    k = round((x1 - x0) / analysis_width)
    if k < WHOLE_BLOCKS_FROM:
        return region, (max(4, round((y1 - y0) * analysis_width / (x1 - x0))), analysis_width)
    x1, y1 = x1 - (x1 - x0) % k, y1 - (y1 - y0) % k
    return (x0, y0, x1, y1), ((y1 - y0) // k, (x1 - x0) // k)


def _disk(radius: float) -> np.ndarray:
    size = max(1, int(round(2 * radius)) | 1)
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


def draw_hand(mask: np.ndarray, points: np.ndarray, finger_width: float, dilate: float) -> None:
    """Draw one hand (21 MediaPipe landmarks, in `mask`'s pixels) into a uint8 mask: palm hull + finger capsules."""
    palm_length = float(np.linalg.norm(points[9] - points[0]))
    if palm_length < 1e-3:
        return
    thickness = max(1, int(round(finger_width * palm_length + 2 * dilate * palm_length)))
    hull = cv2.convexHull(np.round(points[list(PALM)]).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 255)
    if dilate > 0:
        cv2.polylines(mask, [hull], True, 255, max(1, int(round(2 * dilate * palm_length))))
    for chain in FINGERS:
        pts = np.round(points[list(chain)]).astype(np.int32)
        cv2.polylines(mask, [pts], False, 255, thickness)
        for p in pts:
            cv2.circle(mask, (int(p[0]), int(p[1])), thickness // 2, 255, -1)


def _hands_on_grid(hands: list[np.ndarray], to_roi, shape, settings: OcclusionSettings) -> np.ndarray:
    """uint8 {0, 255}: `hands` (frame pixels) drawn on an analysis grid of `shape` (`to_roi`: frame -> grid)."""
    drawn = np.zeros(shape, np.uint8)
    for hand in hands:
        draw_hand(drawn, to_roi(hand), settings.finger_width, settings.hand_dilate)
    return drawn


# ---------------------------------------------------------------------------------------------- hands


def not_the_face(hand: np.ndarray, landmarks: np.ndarray, face_width: float, settings: OcclusionSettings) -> bool:
    """False for a "hand" that is not a hand in front of the face. A hand covers the mouth only with its fingers
    over the face: `hand_min_on_face` of its 21 points inside the face's outline (the landmark hull) at least. A
    neck and collarbone read as a hand of a real hand's size, its wrist below the chin and its fingers along the
    collarbone, had 0-3 there and covered a whole chin (docs/faces.md "Occlusion"). And the palm detector fires on
    faces themselves (its authors: hard to avoid, it detects the palm area): the landmarks then lie along the jaw
    and lips, the wrist on the face's edge. A real hand in front of the face is at the face's depth or nearer, so
    its palm (wrist to middle-finger base) is as long as an adult's there, ~0.65-0.75 W; one whose wrist lies within
    `hand_wrist_band` x W of the outline must have a palm of `hand_min_palm` x W at least (the false hands on faces
    measured 0.24-0.48 W). A smaller hand whose wrist lies further below or beside the face (an arm reaching in)
    is kept."""
    s = settings
    outline = cv2.convexHull(np.asarray(landmarks, np.float32)[:, :2])
    on_face = sum(cv2.pointPolygonTest(outline, (float(x), float(y)), False) >= 0 for x, y in hand[:, :2])
    if on_face < s.hand_min_on_face:
        return False
    if np.linalg.norm(hand[9] - hand[0]) >= s.hand_min_palm * face_width:
        return True
    wrist = (float(hand[0][0]), float(hand[0][1]))
    return cv2.pointPolygonTest(outline, wrist, True) < -s.hand_wrist_band * face_width


class HandFinder:
    """MediaPipe Hands on a search region around the face, in video mode (it tracks a found hand itself)."""

    def __init__(self, settings: OcclusionSettings):
        self.settings = settings
        self._hands = self._model()
        self._backwards = None  # the same model, fed frames backwards (`followed_back`), made when first needed
        self._region: tuple[int, int, int, int] | None = None
        self._calls = 0
        self._last: list[np.ndarray] = []
        self._missed = 0
        self._skipped = 0  # frames since the palm detector last ran
        self.unsearched = 0  # when the last call found a hand where none was: the frames right before it that the
        # palm detector skipped (`hand_every`), else 0
        self.runs = 0

    def _model(self):
        import mediapipe as mp

        s = self.settings
        return mp.solutions.hands.Hands(
            static_image_mode=False, max_num_hands=2, model_complexity=s.hand_model_complexity,
            min_detection_confidence=s.hand_min_score, min_tracking_confidence=s.hand_min_score)

    def reset(self) -> None:
        """Forget the hands seen so far, the model's own tracking included (a shot cut: nothing carries over)."""
        self._region, self._calls, self._last, self._missed, self._skipped, self.unsearched = None, 0, [], 0, 0, 0
        self._hands.reset()

    def _search_region(self, face_box, frame_hw):
        """Keep the region fixed while the face stays inside its middle, so the model's tracking stays valid."""
        s = self.settings
        x1, y1, x2, y2 = (float(v) for v in face_box)
        if self._region is not None:
            rx0, ry0, rx1, ry1 = self._region
            cx, cy, fw = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1
            expected_w = (1 + 2 * s.hand_side) * fw
            inside = rx0 + 0.3 * (rx1 - rx0) <= cx <= rx1 - 0.3 * (rx1 - rx0) and ry0 <= cy <= ry1
            if inside and 0.8 <= (rx1 - rx0) / max(expected_w, 1.0) <= 1.25:
                return self._region
        self._region = _roi(face_box, s.hand_side, 0.0, s.hand_below, frame_hw)
        return self._region

    def __call__(self, frame: np.ndarray, face_box, face_landmarks=None) -> list[np.ndarray]:
        """Hands (each (21, 2) frame pixels) seen in this frame, or held from the last few frames. With the
        face's landmarks, a "hand" that is the face itself is dropped (`not_the_face`)."""
        self._calls += 1
        self.unsearched = 0
        if not self._last and (self._calls - 1) % self.settings.hand_every:
            self._skipped += 1
            return []
        skipped, self._skipped = self._skipped, 0
        region = self._search_region(face_box, frame.shape[:2])
        if region is None:
            return []
        hands = self._run(self._hands, frame, region, face_box, face_landmarks)
        if hands:
            if not self._last:  # a hand just found: the frames skipped right before may show it too
                self.unsearched = skipped
            self._last, self._missed = hands, 0
            return hands
        if self._last and self._missed < self.settings.hand_hold:
            self._missed += 1
            return self._last
        self._last, self._missed = [], 0
        return []

    def followed_back(self, frames) -> Iterator[list[np.ndarray]]:
        """The hands in each of `frames` ((frame, face box, face landmarks), the last call's frame first, then
        earlier ones, newest first), as a second model in video mode sees them when fed the frames backwards: a
        hand found in the first is tracked back over the others (the palm detector alone misses a hand in many
        frames that tracking keeps). For the frames the palm detector skipped (`OccluderMasker._look_back_hands`);
        the forward model's tracking is not touched."""
        if self._backwards is None:
            self._backwards = self._model()
        else:
            self._backwards.reset()
        for frame, face_box, face_landmarks in frames:
            yield self._run(self._backwards, frame, self._region, face_box, face_landmarks)

    def _run(self, model, frame: np.ndarray, region, face_box, face_landmarks) -> list[np.ndarray]:
        """The hands `model` sees in the frame's search `region`, in frame pixels, less those that are the face."""
        x0, y0, x1, y1 = region
        crop, scale = self._model_input(frame[y0:y1, x0:x1])
        self.runs += 1
        result = model.process(np.ascontiguousarray(crop))
        hands = []
        for landmarks in result.multi_hand_landmarks or []:
            pts = np.array([(p.x * crop.shape[1], p.y * crop.shape[0]) for p in landmarks.landmark])
            hands.append(pts / scale + np.array([x0, y0], dtype=np.float64))
        if face_landmarks is not None:
            width = float(face_box[2] - face_box[0])
            hands = [hand for hand in hands if not_the_face(hand, face_landmarks, width, self.settings)]
        return hands

    def _model_input(self, crop: np.ndarray) -> tuple[np.ndarray, float]:
        """The search region at the hand model's input size, and its scale: a region k >= 2 times
        `hand_max_side` is averaged in whole k x k blocks (OpenCV's fast area resize: 2.8 against 7.1 ms for a
        600 px face's region) to between 1 and 2 x `hand_max_side`, else area-resized to `hand_max_side`."""
        h, w = crop.shape[:2]
        k = max(h, w) // self.settings.hand_max_side
        if k >= 2:
            crop = crop[: h - h % k, : w - w % k]
            return cv2.resize(crop, (w // k, h // k), interpolation=cv2.INTER_AREA), 1.0 / k
        scale = min(1.0, self.settings.hand_max_side / max(h, w))
        if scale < 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        return crop, scale

    def close(self) -> None:
        self._hands.close()
        if self._backwards is not None:
            self._backwards.close()


# ---------------------------------------------------------------------------------------------- colour


def _robust_z(values_map: list[np.ndarray], sample: np.ndarray, floor: float) -> np.ndarray:
    """Per pixel, the largest |x - median| / robust SD over the channels, median and SD taken on `sample`."""
    z = np.zeros(sample.shape, np.float32)
    for channel in values_map:
        values = channel[sample]
        centre = float(np.median(values))
        spread = max(1.4826 * float(np.median(np.abs(values - centre))), floor)
        z = np.maximum(z, np.abs(channel - centre) / spread)
    return z


def _lips_seen(saturation: np.ndarray, lips: np.ndarray, skin_saturation: float, neutral_ratio: float) -> bool:
    """Whether the lip ring shows lips, so that its colours may be taken as the lips' own (the per-frame lip model
    used until the shot's mouth colours are learnt): its median saturation is at least `neutral_ratio` x the skin's
    (`skin_saturation`, the skin sample's median).
    Lips are about as saturated as the skin or more (0.77 x its median at the least, over 100 frames of every corpus
    clip); a microphone or a cup over most of the ring is grey or white (0.05-0.32 x). Were its colours taken as the
    lips', the object's part over the lips would not be found in the shot's first frames, and would be learnt as the
    mouth's colours and missed on (docs/faces.md "Occlusion")."""
    return float(np.median(saturation[lips])) >= neutral_ratio * skin_saturation


def _deeper_than_lips(chroma: list[np.ndarray], lips: np.ndarray, skin: np.ndarray, floor: float, z: float
                      ) -> np.ndarray:
    """Pixels whose chromaticity lies beyond the lips' median on the line from the skin's, within `z` robust SDs
    of that line: the deep red centre of a lipsticked lip, far from the lip ring's median (which the ring's
    pale edge pulls towards the skin) but in the lips' own direction. An object over the lips (blue, grey,
    black) lies elsewhere."""
    skin_c = np.array([np.median(c[skin]) for c in chroma])
    lip_c = np.array([np.median(c[lips]) for c in chroma])
    axis = lip_c - skin_c
    length = float(np.hypot(*axis))
    if length < floor:
        return np.zeros(lips.shape, bool)
    dx, dy = chroma[0] - lip_c[0], chroma[1] - lip_c[1]
    along = (dx * axis[0] + dy * axis[1]) / length
    across = np.abs(dx * axis[1] - dy * axis[0]) / length
    spread = max(1.4826 * float(np.median(across[lips])), floor)
    return (along > 0) & (across <= z * spread)


@dataclass(frozen=True)
class ColourCandidates:
    """The colour cue's verdict per pixel of one analysed region (`colour_candidates`)."""

    image: np.ndarray  # the region, blurred (float32 RGB)
    anywhere: np.ndarray  # bool: neither skin nor lips (nor the shot's mouth colours), or too dark for a colour
    never: np.ndarray  # bool: never a candidate (the nose's underside; the open mouth or its learnt colours)
    at_ends: np.ndarray  # bool: what only an elongated object's end may take (`_with_end_parts`): pale pixels on the
    # face that the sheen rule excused, and the nose's underside where it is not skin-coloured (a pen's metal tip)


def colour_candidates(roi: np.ndarray, regions: dict, settings: OcclusionSettings,
                      mouth_cells: np.ndarray | None = None) -> ColourCandidates | None:
    """The pixels of the analysed region that may belong to an occluder (see `colour_occluders` for the arguments),
    None where too little of the face's skin is seen to sample its colour."""
    s = settings
    image = cv2.GaussianBlur(roi, (3, 3), 0).astype(np.float32)
    total = image[..., 0] + image[..., 1] + image[..., 2] + 1e-3  # exact (integers), much cheaper than .sum(axis=2)
    chroma = [image[..., 0] / total, image[..., 1] / total]
    luma = image @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    bright_enough = luma >= s.min_luma
    skin = (regions["skin"] > 0) & bright_enough
    if skin.sum() < 16:
        return None
    not_skin = _robust_z(chroma, skin, s.chroma_floor) > s.chroma_z
    # Grey, black, white and metal: far less saturated than this face's skin (the chromaticity z misses them
    # when the skin's own spread is wide).
    saturation = np.hypot(chroma[0] - 1 / 3, chroma[1] - 1 / 3)
    face_luma = float(np.median(luma[skin]))
    skin_saturation = float(np.median(saturation[skin]))
    neutral, like_sheen = _neutral_objects(saturation, luma, skin, skin_saturation, face_luma, s)
    not_skin |= neutral
    mouth_area = (regions["lips"] > 0) | (regions["mouth"] > 0)
    lips = (regions["lips"] > 0) & bright_enough
    if mouth_cells is None and lips.sum() >= 16 and _lips_seen(saturation, lips, skin_saturation, s.neutral_ratio):
        not_lips = _robust_z(chroma, lips, s.chroma_floor) > s.chroma_z
        not_lips &= ~_deeper_than_lips(chroma, lips, skin, s.chroma_floor, s.chroma_z)
        not_skin &= ~((regions["lips"] > 0) & ~not_lips)
    # Shadowed skin keeps its chromaticity, so darkness alone only counts where chromaticity is unreliable.
    dark = min(s.min_luma, s.dark_ratio * face_luma)
    too_dark = luma < dark
    if s.shadow_share > 0 and too_dark.any():
        # A dark piece that covers part of the cheeks and nose sampled above the nose tip is the face's own shadow
        # (a side light): an occluder in front of the mouth rarely reaches up there.
        sample = regions["skin"] > 0
        too_dark &= _seeded(too_dark.astype(np.uint8), sample, s.shadow_share, int(sample.sum())) == 0
    never = regions["nose"] > 0
    if mouth_cells is None:
        never |= regions["mouth"] > 0
    else:
        never |= mouth_area & mouth_cells.ravel()[_colour_bins(roi, s.colour_bins)]
    # On a dim face (median luminance under min_luma / dark_ratio) the pixels from `dark` to `min_luma` were neither:
    # too dark to trust their chromaticity, not dark enough to count as dark. A grey or black object there (a
    # microphone in a dim room, or in front of dark skin) is still far less saturated than the skin: noise only
    # adds saturation, and shaded skin keeps its own.
    dim_grey = neutral & ~bright_enough & (luma >= dark)
    objectish = (not_skin & bright_enough) | dim_grey | too_dark
    # What only an elongated object's end may take: on the face, pale pixels excused as its sheen, and what is not
    # skin on the nose's underside, unless too dark (nostrils, shade).
    excused = like_sheen | (not_skin & (regions["nose"] > 0))
    at_ends = excused & bright_enough & ~too_dark & (regions["zone"] > 0)
    return ColourCandidates(image, objectish & ~never, never, at_ends)


def colour_occluders(roi: np.ndarray, regions: dict, face_width: float, settings: OcclusionSettings,
                     mouth_cells: np.ndarray | None = None, candidates: ColourCandidates | None = None) -> np.ndarray:
    """uint8 {0, 255} mask of pixels in the analysed region that are neither skin nor lips, seeded in the face.

    `roi`: (h, w, 3) RGB uint8 at analysis scale. `regions` (uint8 masks, see `face_regions`): `skin` where the
    face's colour is sampled (cheeks and nose, above the nose tip: a mouth occluder rarely covers them),
    `lips` (the lip ring, which has its own colour model and is only accepted there), `mouth` (the open mouth,
    never a candidate unless `mouth_cells` is given), `nose` (the nose's underside: nostrils, never a
    candidate), `seed` (the lower face: an occluder must cover part of it), `zone` (the face, a thin margin
    and the area below the chin: an occluder is followed there), `below_chin` (bool: that area's part off the
    face, where it is followed only straight down, `chin_spread`) and `background` (beside the cheeks: beyond
    the zone an occluder is followed over pixels unlike it). `face_width`
    in analysis pixels. `mouth_cells` (bool, colour_bins^3, already grown by `_grown_cells`): the colours the
    lips and the open mouth showed in earlier frames of the shot where nothing covered them; when given, a lip
    or mouth pixel is a
    candidate when it is neither skin nor one of those colours (replaces the lip model and the mouth exclusion,
    so an object over the open mouth is seen). `candidates`: `colour_candidates` of the same arguments, when
    the caller has them already.
    """
    s = settings
    if candidates is None:
        candidates = colour_candidates(roi, regions, s, mouth_cells)
    if candidates is None:
        return np.zeros(roi.shape[:2], np.uint8)
    image, anywhere, never = candidates.image, candidates.anywhere.copy(), candidates.never

    def seeded(anywhere):  # candidates where an occluder is followed, and the pieces of them on the lower face
        candidate = (anywhere & (regions["zone"] > 0)).astype(np.uint8) * 255
        return candidate, _seeded(candidate, regions["seed"] > 0, s.min_area, regions.get("lower_face"))

    candidate, found = seeded(anywhere)
    if not found.any():
        return found
    blended = np.zeros(anywhere.shape, bool)
    if s.blend_contrast > 0:  # something is there: join its parts across the edges between its colours
        blended = _blends(image, anywhere, s.blend_contrast, s.blend_tolerance) & ~never
        anywhere |= blended
        candidate, found = seeded(anywhere)
    core = (found > 0) & (regions["seed"] > 0)
    if s.object_bins > 0:
        # The object's own colours, where it lies on the lower face: from there it is followed only over
        # pixels like it, not into dark hair, jaw shade or nostrils that happen to touch it. The blended edges
        # between its colours are its own too.
        like_object = _like(roi, core, s.object_bins) | blended
        anywhere &= like_object
        found = _touching((candidate > 0) & like_object, core)
        if s.part_share > 0:
            found = _with_parts(found > 0, candidate > 0, like_object, s.part_share,
                                _disk(s.part_outline * face_width / 2))
        if s.end_elongation > 0:
            excused = candidates.at_ends & ~blended & (found == 0)
            found = _with_end_parts(found > 0, (candidate > 0) & ~like_object & (found == 0), s.end_elongation,
                                    excused, s.end_reach)
    if s.beyond_face:
        # Beyond the face the edited region reaches into the background: follow a found object there, over
        # pixels that are neither skin nor like the background sampled beside the cheeks.
        beyond = anywhere & (regions["zone"] == 0) & ~_like(roi, regions["background"], s.colour_bins)
        found = _touching((found > 0) | beyond, found > 0)
    if s.close > 0 and found.any():
        found = cv2.morphologyEx(found, cv2.MORPH_CLOSE, _disk(s.close * face_width / 2))
    if s.chin_spread >= 0:
        # Below the chin the object's colour is often the clothes' (a black microphone, a black turtleneck).
        found = _straight_down(found, regions["below_chin"], s.chin_spread)
    return found


def _straight_down(found: np.ndarray, below: np.ndarray, spread: float) -> np.ndarray:
    """uint8 {0, 255}: `found` with its pixels in `below` (bool: below the chin) kept only under the columns it
    covers higher up, the kept band widening by `spread` pixels a row on each side: a microphone's handle goes
    on down, the clothes of its colour that touch it are not taken (a black microphone over a black turtleneck took
    half of the edited region below her chin: docs/faces.md "Occlusion")."""
    rows = np.nonzero(below.any(axis=1))[0]
    if not rows.size or not found[rows].any():
        return found
    out = found.copy()
    columns = below.any(axis=0)
    under = (out[: rows[0]] > 0).any(axis=0) & columns  # the zone's columns the object covers above it
    owed = 0.0
    for y in range(rows[0], rows[-1] + 1):
        owed += spread
        grow = int(owed)
        owed -= grow
        if grow:
            under = cv2.dilate(under.astype(np.uint8)[None], np.ones((1, 2 * grow + 1), np.uint8))[0] > 0
        out[y, below[y] & ~under] = 0
        under = (under | (out[y] > 0)) & columns
    return out


def coming_in(roi: np.ndarray, regions: dict, candidates: ColourCandidates, settings: OcclusionSettings
              ) -> np.ndarray:
    """uint8 {0, 255}: the pixels of the lips and the open mouth that belong to something coming in from outside
    them: a candidate piece on the face, as large as an occluder (`min_area` of the lower face), that touches
    them, and the pixels there like it and joined to it. The mouth's colours are learnt where nothing covers it
    (`OccluderMasker._learn_mouth`); an object that reaches the lips before it is found (from beside the jaw,
    where alone it is not taken for an occluder) would teach the mouth its colours and stay unseen over the mouth
    for the rest of the shot. Teeth and the mouth's inside appear within the lips, joined to nothing outside. Used
    once the shot's first `mouth_frames` are learnt: a shot whose lips something touches from its first frame
    must still learn its mouth (applied from the first frame, it cost up to 9 points of kept on other clips, or
    kept the teeth out of the model where a white cup touched the lips: docs/faces.md "Occlusion")."""
    s = settings
    mouth_area = (regions["lips"] > 0) | (regions["mouth"] > 0)
    outside = candidates.anywhere & (regions["zone"] > 0) & ~mouth_area
    rim = outside & (cv2.dilate(mouth_area.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    if not rim.any():
        return np.zeros(mouth_area.shape, np.uint8)
    pieces = _touching(outside, rim)
    pieces = _seeded(pieces, np.ones(mouth_area.shape, bool), s.min_area, regions.get("lower_face")) > 0
    like = _like(roi, pieces, s.colour_bins)
    return _touching((mouth_area & like) | pieces, pieces) & (mouth_area.astype(np.uint8) * 255)


def _with_parts(found: np.ndarray, candidate: np.ndarray, like_object: np.ndarray, share: float,
                disk: np.ndarray) -> np.ndarray:
    """uint8 {0, 255}: `found` (bool) with the parts of other colours it holds. An object is followed over its own
    colours as seen on the lower face; a part of another colour (the red band of a white cup, below the chin)
    would stop it there, and whatever lies beyond that part would be lost. A candidate piece of other colours
    within the object's outline (the object and pixels like it, closed with `disk`) that touches the object and
    whose one-pixel border is mostly (`share`) the object or pixels like it is such a part: it joins, and the
    object is followed on beyond it over its own colours. Jaw shade, hair or a collar beside the object lie
    outside that outline or have a border of skin, background or clothes, and stay out."""
    objectish = found | (candidate & like_object)
    closed = cv2.morphologyEx(objectish.astype(np.uint8), cv2.MORPH_CLOSE, disk) > 0
    other = candidate & ~like_object & closed
    count, labels = cv2.connectedComponents(other.astype(np.uint8), connectivity=8)
    if count <= 1:
        return found.astype(np.uint8) * 255
    # Each border pixel goes to the piece beside it (the largest label when two pieces are that close).
    beside = cv2.dilate(labels.astype(np.float32), np.ones((3, 3), np.uint8)).astype(np.intp)
    border = ~other & (beside > 0)
    size = np.bincount(beside[border], minlength=count)
    on_object = np.bincount(beside[border & objectish], minlength=count)
    touching = np.bincount(beside[border & found], minlength=count) > 0
    parts = touching & (on_object >= share * np.maximum(size, 1))
    parts[0] = False
    return _touching(found | parts[labels] | (candidate & like_object), found)


def _with_end_parts(found: np.ndarray, other: np.ndarray, elongation: float, excused: np.ndarray | None = None,
                    reach: float = 0.0) -> np.ndarray:
    """uint8 {0, 255}: `found` (bool) with the parts of other colours at the ends of an elongated object: a pen's
    metal tip, a cap. Such a part shares only the object's short end, so `_with_parts`'s border rule cannot see
    it. When the object is at least `elongation` times as long as it is wide (its pixels' principal axes), a
    candidate piece of other colours (`other`) that touches it and lies mostly (`END_SHARE`) past one of its ends,
    within its width (`END_WIDTH`), joins; jaw shade, lips or hair beside the object lie across its axis and stay out.
    `excused` (bool): pixels that are no candidates only because a face may look like them (a grey tip as pale as
    the face's sheen, or over the nose's underside: most of the pen's lost tip in the bench); those within that
    width and up to `reach` x the object's length past an end count as `other` too (only there: a shiny chin or a
    nose is no part of anything elsewhere)."""
    ys, xs = np.nonzero(found)
    if len(xs) < 8:
        return found.astype(np.uint8) * 255
    points = np.stack([xs, ys], axis=1).astype(np.float64)
    centre = points.mean(axis=0)
    values, vectors = np.linalg.eigh(np.cov((points - centre).T))
    axis, across_axis = vectors[:, 1], vectors[:, 0]
    along = (points - centre) @ axis
    half_width = np.sqrt(3.0 * max(values[0], 1e-6))  # a bar of width w has sd w / sqrt(12) across
    if along.max() - along.min() < elongation * 2 * half_width:
        return found.astype(np.uint8) * 255
    if excused is not None and reach > 0:
        ey, ex = np.nonzero(excused)
        rel = np.stack([ex, ey], axis=1) - centre
        t, d = rel @ axis, np.abs(rel @ across_axis)
        beyond = np.maximum(t - along.max(), along.min() - t)  # > 0 past either end
        band = (beyond > 0) & (beyond <= reach * (along.max() - along.min())) & (d <= END_WIDTH * half_width)
        other = other.copy()
        other[ey[band], ex[band]] = True
    count, labels = cv2.connectedComponents(other.astype(np.uint8), connectivity=8)
    if count <= 1:
        return found.astype(np.uint8) * 255
    touching = np.zeros(count, bool)
    touching[np.unique(labels[cv2.dilate(found.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0])] = True
    ly, lx = np.nonzero(labels)
    rel = np.stack([lx, ly], axis=1) - centre
    t, d = rel @ axis, np.abs(rel @ across_axis)
    at_end = ((t > along.max()) | (t < along.min())) & (d <= END_WIDTH * half_width)
    piece = labels[ly, lx]
    share = np.bincount(piece, weights=at_end, minlength=count) / np.maximum(np.bincount(piece, minlength=count), 1)
    ends = touching & (share >= END_SHARE)
    ends[0] = False
    return (found | ends[labels]).astype(np.uint8) * 255


def _blends(image: np.ndarray, mask: np.ndarray, contrast: float, tolerance: float) -> np.ndarray:
    """Pixels outside `mask` that lie between two pixels of it (either side, in one of four directions) and whose
    colour is a mix of theirs: where two colours of one object meet (a red band on a white cup), the downscaled,
    blurred edge between them can pass for skin and would cut the object in two. A strip of real skin between two
    objects (a jaw between dark hair and a dark microphone) is no mix of their colours and stays a gap.
    `contrast`: the two sides differ by at least this (RGB distance); `tolerance`: the pixel lies within this
    share of that difference of the line between them."""
    out = np.zeros(mask.shape, bool)
    h, w = mask.shape
    centre = (slice(1, h - 1), slice(1, w - 1))
    pixel, gap = image[centre], ~mask[centre]
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        before = (slice(1 - dy, h - 1 - dy), slice(1 - dx, w - 1 - dx))
        after = (slice(1 + dy, h - 1 + dy), slice(1 + dx, w - 1 + dx))
        both = gap & mask[before] & mask[after]
        if not both.any():
            continue
        a, b, p = image[before][both], image[after][both], pixel[both]
        span = b - a
        length2 = np.maximum((span * span).sum(axis=1), 1e-6)
        t = ((p - a) * span).sum(axis=1) / length2
        off = p - (a + np.clip(t, 0, 1)[:, None] * span)
        mixed = ((length2 >= contrast**2) & (t > 0.05) & (t < 0.95)
                 & ((off * off).sum(axis=1) <= tolerance**2 * length2))
        hits = np.zeros(both.shape, bool)
        hits[both] = mixed
        out[centre] |= hits
    return out


def _neutral_objects(saturation: np.ndarray, luma: np.ndarray, skin: np.ndarray, skin_saturation: float,
                     face_luma: float, settings: OcclusionSettings) -> tuple[np.ndarray, np.ndarray]:
    """(objects, excused), bool. Objects: pixels that are grey, black, white or metal rather than this face's skin:
    far less saturated than the skin (`neutral_ratio` x its median, `skin_saturation`), unless they are as pale and as bright as the
    face's own sheen. Sheen, powder and highlights under a hard light are as pale as a white object; where the
    sample above the nose tip shows them (pale pixels at least as bright as its median skin, `sheen_share` of it or
    more), pale pixels from the skin's 10th brightness percentile to the sheen's 95th are skin; darker (black, grey
    metal) or brighter (white) ones are still objects. Excused: the pale pixels that only this sheen rule took for
    skin. `face_luma`: the sample's median luminance."""
    neutral = saturation < settings.neutral_ratio * skin_saturation
    sheen = skin & neutral & (luma >= face_luma)  # pale and bright: an object there is rare
    if settings.sheen_share > 0 and sheen.sum() >= max(8, settings.sheen_share * skin.sum()):
        like_sheen = (luma >= np.percentile(luma[skin], 10)) & (luma <= np.percentile(luma[sheen], 95))
        return neutral & ~like_sheen, neutral & like_sheen
    return neutral, np.zeros(neutral.shape, bool)


def _seeded(candidate: np.ndarray, seed: np.ndarray, min_area: float, area: int | None = None) -> np.ndarray:
    """The connected pieces of `candidate` (uint8) that cover at least `min_area` x `area` pixels (default: the
    size of `seed`) of `seed` (bool)."""
    count, labels = cv2.connectedComponents(candidate, connectivity=8)
    if count <= 1:
        return np.zeros_like(candidate)
    inside = np.bincount(labels[seed].ravel(), minlength=count)
    keep = inside >= min_area * max(1, int(seed.sum()) if area is None else area)
    keep[0] = False
    return keep[labels].astype(np.uint8) * 255


def _touching(mask: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """uint8 {0, 255}: the connected pieces of `mask` (bool) that hold a pixel of `seed` (bool)."""
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    touching = np.zeros(count, bool)
    touching[np.unique(labels[seed & mask])] = True
    touching[0] = False
    return touching[labels].astype(np.uint8) * 255


def _colour_bins(image: np.ndarray, bins: int) -> np.ndarray:
    """Per pixel, the index of its RGB cell in a bins^3 grid."""
    q = (image.astype(np.int32) * bins) >> 8
    return (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]


def _cells_of(image: np.ndarray, sample: np.ndarray, bins: int) -> np.ndarray:
    """(bins, bins, bins) pixel counts of the `sample` region's colours."""
    counts = np.bincount(_colour_bins(image, bins)[sample > 0].ravel(), minlength=bins**3)
    return counts.reshape(bins, bins, bins)


def _grown_cells(seen: np.ndarray) -> np.ndarray:
    """The occupied cells (bool) grown by one cell along every channel (no wrap-around): colour tolerance."""
    grown = seen > 0
    for axis in range(3):
        before = grown.copy()
        lo, hi = [slice(None)] * 3, [slice(None)] * 3
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        grown[tuple(hi)] |= before[tuple(lo)]
        grown[tuple(lo)] |= before[tuple(hi)]
    return grown


def _like(image: np.ndarray, sample: np.ndarray, bins: int) -> np.ndarray:
    """(h, w) bool: pixels whose colour cell, or a neighbouring one, holds a pixel of the `sample` region."""
    if bins <= 0 or not sample.any():
        return np.zeros(image.shape[:2], bool)
    return _grown_cells(_cells_of(image, sample, bins)).ravel()[_colour_bins(image, bins)]


def face_regions(landmarks: np.ndarray, to_roi, shape, face_width: float, settings: OcclusionSettings) -> dict | None:
    """The colour cue's regions at analysis scale (see `colour_occluders`), or None for an unknown layout."""
    layout = len(landmarks)
    if layout not in INNER_LIPS:
        return None
    hull_mask = np.zeros(shape, np.uint8)
    hull = cv2.convexHull(to_roi(landmarks).astype(np.float32))
    cv2.fillConvexPoly(hull_mask, np.round(hull).astype(np.int32), 255)
    zone = hull_mask
    if settings.reach * face_width >= 0.5:
        zone = cv2.dilate(hull_mask, _disk(settings.reach * face_width))
    # Below the chin, within the face's width: occluders (microphones, cups, hands) come up from there.
    inset = settings.seed_inset * face_width
    xs, ys = hull[:, 0, 0], hull[:, 0, 1]
    below_chin = zone == 0
    zone = zone.copy()
    zone[max(0, int(ys.max() - inset)):, max(0, int(xs.min() + inset)) : max(0, int(np.ceil(xs.max() - inset)))] = 255
    below_chin &= zone > 0
    if inset >= 0.5:
        hull_mask = cv2.erode(hull_mask, _disk(inset))
    nose_y = max(0, int(np.ceil(to_roi(landmarks[NOSE_TIP[layout]][None])[0, 1])))
    skin, seed = hull_mask.copy(), hull_mask
    skin[nose_y:] = 0
    seed = seed.copy()
    seed[:nose_y] = 0
    mouth = _polygon(to_roi(landmarks[list(INNER_LIPS[layout])]), shape, settings.mouth_dilate * face_width)
    lips = _polygon(to_roi(landmarks[list(OUTER_LIPS[layout])]), shape, 0.03 * face_width)
    lower_face = int(np.count_nonzero(seed))  # min_area is a share of this, wherever the seed is limited to
    if settings.seed_reach > 0:  # an occluder covers part of the lower face near the mouth, not only a cheek
        seed = seed & _polygon(to_roi(landmarks[list(OUTER_LIPS[layout])]), shape, settings.seed_reach * face_width)
    lips[mouth > 0] = 0
    nose = _polygon(cv2.convexHull(to_roi(landmarks[list(NOSE_BOTTOM[layout])]).astype(np.float32))[:, 0], shape,
                    settings.nose_dilate * face_width)
    # The background beside the cheeks (above the nose tip, beyond the zone): what an object is told from
    # where it sticks out of the face.
    background = np.zeros(shape, np.uint8)
    background[:nose_y] = 255
    background[zone > 0] = 0
    return {"skin": skin, "seed": seed, "lips": lips, "mouth": mouth, "zone": zone, "background": background,
            "nose": nose, "lower_face": lower_face, "below_chin": below_chin}


def _polygon(points: np.ndarray, shape, grow_px: float) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 255)
    if grow_px >= 0.5:
        mask = cv2.dilate(mask, _disk(grow_px))
    return mask


# ---------------------------------------------------------------------------------------------- masker


def _feather(binary: np.ndarray, width_px: float) -> np.ndarray:
    """Grow by `width_px`, then blur over the same width: 1 on the whole occluder, a soft ramp outside it."""
    radius = max(1, int(round(width_px)))
    grown = cv2.dilate(binary, _disk(radius + 1))  # +1: the upscale to the frame must not soften the edge
    ksize = 2 * radius + 1
    soft = cv2.GaussianBlur(grown.astype(np.float32) / 255.0, (ksize, ksize), radius / 2)
    return np.minimum(soft, 1.0)


def _fine_mask(crop: np.ndarray, roi: np.ndarray, colour: np.ndarray, face_width: float,
               s: OcclusionSettings) -> np.ndarray:
    """The colour cue's feathered mask on a grid `refine` times finer than the analysis grid (at most the crop's own
    pixels), its edge snapped to the crop's edges there. Found on blurred, downscaled pixels, the object's edge
    lies up to an analysis pixel off: too fat, the edit stops short of the mouth beside a thin pen; too thin, the
    feather's ramp lies over the object. `refine_threshold` < 0.5 leans towards the object (an occluder's edge
    painted over shows more than a thin ring of unedited mouth beside it), and what was found stays found but
    for the outer quarter analysis pixel of its edge (`FOUND_CORE`): where the colours barely differ (a dim shot)
    the fit is weak, its output tends to the window's share of found pixels, and a thin piece of a pen would go."""
    h, w = crop.shape[:2]
    fine_w = min(w, s.refine * colour.shape[1])
    fine_h = h if fine_w == w else max(4, round(h * fine_w / w))
    image = crop if fine_w == w else cv2.resize(crop, (fine_w, fine_h), interpolation=cv2.INTER_AREA)
    found = colour.astype(np.float32) / 255.0
    snapped = _guided_filter(roi, found, image, max(1, round(s.refine_radius)), s.refine_eps) > s.refine_threshold
    snapped |= cv2.resize(found, (fine_w, fine_h), interpolation=cv2.INTER_LINEAR) > FOUND_CORE
    k = fine_w / colour.shape[1]  # fine pixels per analysis pixel
    return _feather(snapped.astype(np.uint8) * 255, s.feather * face_width * k)


def _guided_filter(guide: np.ndarray, p: np.ndarray, fine_guide: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He, Sun and Tang's guided filter with a colour guide (IEEE TPAMI 2013), in its fast form (He and Sun 2015):
    in every (2 radius + 1)^2 window of `guide` the mask `p` is fitted as a linear function of the colour; the
    fitted coefficients, upsampled, are applied to `fine_guide` (the same region, finer), so the mask takes the
    fine image's edges at the cost of the coarse grid. (OpenCV's own `ximgproc.guidedFilter` ships only in
    opencv-contrib, which replaces opencv-python, and has no coarse-fit, fine-apply form.)"""
    size = (2 * radius + 1, 2 * radius + 1)

    def mean(x):
        return cv2.boxFilter(x, -1, size, borderType=cv2.BORDER_REFLECT)

    image = guide.astype(np.float32) / 255.0
    channels = [image[..., c] for c in range(3)]
    mean_i = [mean(c) for c in channels]
    mean_p = mean(p)
    cov_ip = [mean(c * p) - m * mean_p for c, m in zip(channels, mean_i, strict=True)]
    var = {(i, j): mean(channels[i] * channels[j]) - mean_i[i] * mean_i[j] + (eps if i == j else 0.0)
           for i in range(3) for j in range(i, 3)}
    # The inverse of each pixel's symmetric 3 x 3 covariance by cofactors (adjugate / determinant).
    inv = {(0, 0): var[1, 1] * var[2, 2] - var[1, 2] ** 2, (0, 1): var[0, 2] * var[1, 2] - var[0, 1] * var[2, 2],
           (0, 2): var[0, 1] * var[1, 2] - var[0, 2] * var[1, 1], (1, 1): var[0, 0] * var[2, 2] - var[0, 2] ** 2,
           (1, 2): var[0, 1] * var[0, 2] - var[0, 0] * var[1, 2], (2, 2): var[0, 0] * var[1, 1] - var[0, 1] ** 2}
    det = var[0, 0] * inv[0, 0] + var[0, 1] * inv[0, 1] + var[0, 2] * inv[0, 2]
    a = [sum(inv[min(i, j), max(i, j)] * cov_ip[j] for j in range(3)) / det for i in range(3)]
    b = mean_p - sum(ai * m for ai, m in zip(a, mean_i, strict=True))
    fine_wh = fine_guide.shape[1], fine_guide.shape[0]
    a0, a1, a2, b = (cv2.resize(mean(x), fine_wh, interpolation=cv2.INTER_LINEAR) for x in (*a, b))
    red, green, blue = (c.astype(np.float32) for c in cv2.split(fine_guide))
    return (a0 * red + a1 * green + a2 * blue) * np.float32(1 / 255) + b


def _core(patch: OcclusionPatch | None) -> int:
    """Pixels a patch keeps whole (mask >= 0.99): how much of an occluder a frame found."""
    return 0 if patch is None else int(np.count_nonzero(patch.mask >= 0.99))


def _trim(patch: OcclusionPatch, min_value: float) -> OcclusionPatch:
    """The patch cut to the rows and columns that hold a value >= min_value (older, faded parts drop out)."""
    live = patch.mask >= min_value
    rows, cols = np.flatnonzero(live.any(axis=1)), np.flatnonzero(live.any(axis=0))
    if len(rows) == 0:
        return patch
    x0, y0 = patch.box[0] + int(cols[0]), patch.box[1] + int(rows[0])
    mask = patch.mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return OcclusionPatch((x0, y0, x0 + mask.shape[1], y0 + mask.shape[0]), mask)


@dataclass
class _Sighting:
    """One frame as the colour cue sees it, kept for `look_back`. Its analysis image and face regions are made when
    first asked for: a frame the colour cue skipped (`colour_every`) costs nothing unless a later frame's object is
    followed back over it."""

    region: tuple[int, int, int, int]  # the analysed region in frame pixels
    small_hw: tuple[int, int]  # its analysis grid
    frame: np.ndarray  # the whole frame (held only while it is one of the last `look_back`)
    to_roi: Callable[[np.ndarray], np.ndarray]  # frame pixels -> analysis pixels
    face_box: np.ndarray  # the face's landmark box, in frame pixels
    landmarks: np.ndarray  # the face's, in frame pixels
    face_width: float  # in analysis pixels
    settings: OcclusionSettings
    found: np.ndarray | None = None  # the colour cue's object (uint8 {0, 255}; all 0 where none or where it did
    # not look; or what `look_back` found)
    patch: OcclusionPatch | None = None  # the mask handed out for this frame (grown by `look_back`)

    def __post_init__(self):
        if self.found is None:
            self.found = np.zeros(self.small_hw, np.uint8)

    @property
    def crop(self) -> np.ndarray:
        """The frame's pixels of `region` (a view)."""
        x0, y0, x1, y1 = self.region
        return self.frame[y0:y1, x0:x1]

    @cached_property
    def roi(self) -> np.ndarray:
        """`crop` on the analysis grid."""
        return cv2.resize(self.crop, self.small_hw[::-1], interpolation=cv2.INTER_AREA)

    @cached_property
    def regions(self) -> dict:
        """`face_regions` on the analysis grid."""
        return face_regions(self.landmarks, self.to_roi, self.small_hw, self.face_width, self.settings)


def _map_onto(mask: np.ndarray, source: _Sighting, target: _Sighting,
              shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """`mask` on `source`'s analysis grid, on `target`'s, moved by `shift` frame pixels: both grids follow the
    face, so it goes through the frame's coordinates (nearest pixel)."""
    (sx0, sy0, sx1, _), (_, sw) = source.region, source.small_hw
    (tx0, ty0, tx1, _), (th, tw) = target.region, target.small_hw
    source_scale, step = sw / (sx1 - sx0), (sw / (sx1 - sx0)) / (tw / (tx1 - tx0))  # one target pixel in source's
    matrix = np.array([[step, 0.0, (tx0 - sx0 - shift[0]) * source_scale + 0.5 * step - 0.5],
                       [0.0, step, (ty0 - sy0 - shift[1]) * source_scale + 0.5 * step - 0.5]])
    return cv2.warpAffine(mask, matrix, (tw, th), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)


def _where_it_may_be(found: np.ndarray, source: _Sighting, target: _Sighting) -> np.ndarray:
    """`source`'s object on `target`'s grid, where it may lie now: at the same place in the frame (a microphone on
    a stand) or moved with the face (one the speaker holds; a thin pen held to a turning head was lost by the first
    alone: docs/faces.md "Occlusion")."""
    moved = target.landmarks.mean(axis=0) - source.landmarks.mean(axis=0)
    return np.maximum(_map_onto(found, source, target), _map_onto(found, source, target, tuple(moved.tolist())))


def _union_max(parts: list[tuple[OcclusionPatch | None, float]], min_value: float) -> OcclusionPatch | None:
    """max(weight x patch) over the union of the patches' boxes; None when nothing reaches `min_value`."""
    parts = [(patch, weight) for patch, weight in parts if patch is not None]
    if not parts:
        return None
    if len(parts) == 1:
        patch, weight = parts[0]
        if weight == 1.0:
            return patch
        faded = OcclusionPatch(patch.box, patch.mask * weight)
        return faded if faded.mask.max() >= min_value else None
    bx0, by0 = min(p.box[0] for p, _ in parts), min(p.box[1] for p, _ in parts)
    bx1, by1 = max(p.box[2] for p, _ in parts), max(p.box[3] for p, _ in parts)
    merged = np.zeros((by1 - by0, bx1 - bx0), np.float32)
    for patch, weight in parts:
        x0, y0, x1, y1 = patch.box
        view = merged[y0 - by0 : y1 - by0, x0 - bx0 : x1 - bx0]
        np.maximum(view, patch.mask * weight, out=view)
    return _trim(OcclusionPatch((bx0, by0, bx1, by1), merged), min_value)


class OccluderMasker:
    """Per-frame occluder mask of one face, with temporal state (see the module docstring for the interface)."""

    def __init__(self, mode: str = "auto", settings: OcclusionSettings | None = None):
        self.settings = settings if settings is not None else load_faces_config().occlusion
        if mode not in OCCLUSION_MODES:
            raise ValueError(f"unknown occlusion mode {mode!r}; choose one of {', '.join(OCCLUSION_MODES)}")
        self.mode = mode
        self._hands = HandFinder(self.settings) if mode in ("auto", "hands") else None
        self._previous: OcclusionPatch | None = None
        self._last_found: tuple[OcclusionPatch | None, int] = (None, 0)  # last frame's own detection, its core
        self._mouth_counts: np.ndarray | None = None  # colours of the uncovered lips and mouth in this shot
        self._mouth_frames = 0
        self._mouth_grown: tuple[int, np.ndarray] | None = None  # (cells seen, those cells grown) cache
        self._colour_calls = 0  # frames of this shot the colour cue was asked about
        self._recent: deque[_Sighting] = deque(maxlen=max(1, self.settings.look_back))  # the last frames seen
        self._run = 0  # frames in a row, up to the last, whose mask kept something whole (found, or held)
        self._carry: tuple[_Sighting, int, np.ndarray] | None = None  # (last frame, frames carried, object colours)
        self._revised: list[tuple[int, OcclusionPatch]] = []  # what the last `patch` call grew (`revisions`)
        self.frames = 0
        self.frames_with_mask = 0

    def reset(self) -> None:
        """Forget the temporal state (call at shot cuts): the next mask owes nothing to earlier frames."""
        self._previous, self._last_found = None, (None, 0)
        self._mouth_counts, self._mouth_frames, self._mouth_grown = None, 0, None
        self._colour_calls, self._run, self._carry = 0, 0, None
        self._recent.clear()
        if self._hands is not None:
            self._hands.reset()

    def __call__(self, frame: np.ndarray, face_box, landmarks) -> np.ndarray | None:
        patch = self.patch(frame, face_box, landmarks)
        return None if patch is None else patch.full(frame.shape[:2])

    def patch(self, frame: np.ndarray, face_box, landmarks) -> OcclusionPatch | None:
        """The mask as an `OcclusionPatch` (box + mask), or None when nothing covers the face. An object seen
        here for the first time may also grow the masks of the last frames: see `revisions`."""
        self.frames += 1
        self._revised = []
        if self.mode == "off":
            return None
        current, sighting, carried = None, None, False
        if face_box is not None and landmarks is not None:
            current, sighting, carried = self._detect(frame, np.asarray(face_box, np.float64),
                                                      np.asarray(landmarks, np.float64))
        if sighting is None:
            self._recent.clear()
        core = _core(current) if self.settings.hold > 0 else 0
        merged = self._merge(current, core, carried)
        self._previous, self._last_found = merged, (current, core)
        self.frames_with_mask += int(merged is not None)
        self._run = self._run + 1 if _core(merged) > 0 else 0
        self._carry = self._next_carry(sighting, carried)
        if sighting is not None:
            sighting.patch = merged
            if sighting.found.any() and self._recent and not self._recent[-1].found.any():
                self._look_back(sighting)
            if self._hands is not None and self._hands.unsearched:  # (it ran on this frame: there is a sighting)
                self._look_back_hands(sighting, self._hands.unsearched)
            self._recent.append(sighting)
        return merged

    def revisions(self) -> list[tuple[int, OcclusionPatch]]:
        """Masks of earlier frames that the last `patch` call grew, as (frames back, its whole new patch): 1 is the
        frame of the call before. An object found on the lower face for the first time is followed back, from
        where it lies now and in its own colours, over up to `look_back` earlier frames of the shot (it came in
        from beside the jaw or below the chin, where alone it is not taken for an occluder). Never across a
        `reset` or a frame without a face. A caller that uses the masks only `look_back` frames later misses
        nothing."""
        return list(self._revised)

    # ----------------------------------------------------------------------------------------- per frame

    def _detect(self, frame: np.ndarray, face_box: np.ndarray, landmarks: np.ndarray
                ) -> tuple[OcclusionPatch | None, _Sighting | None, bool]:
        """This frame's own occluder patch, the frame as the cues see it (kept for `look_back`, also where the
        colour cue skipped it or cannot run; None where the face's region lies outside the frame), and whether it
        found its object only by carrying the last frame's (`_next_carry`)."""
        s = self.settings
        frame_hw = frame.shape[:2]
        region = _roi(face_box, s.roi_side, s.roi_top, s.roi_bottom, frame_hw)
        if region is None:
            return None, None, False
        region, small_hw = _analysis_grid(region, s.analysis_width)
        x0, y0, x1, y1 = region
        scale = small_hw[1] / (x1 - x0)
        origin = np.array([x0, y0], dtype=np.float64)

        def to_roi(points):
            return (np.asarray(points, np.float64) - origin) * scale

        face_width = (face_box[2] - face_box[0]) * scale
        hands = _hands_on_grid(self._hands(frame, face_box, landmarks) if self._hands is not None else [], to_roi,
                               small_hw, s)
        colour, carried = None, False
        sighting = _Sighting(region, small_hw, frame, to_roi, face_box, landmarks, face_width, s)
        if self._colour_due() and len(landmarks) in INNER_LIPS:
            mouth = self._mouth_model()
            candidates = colour_candidates(sighting.roi, sighting.regions, s, mouth)
            colour = sighting.found = colour_occluders(sighting.roi, sighting.regions, face_width, s, mouth,
                                                       candidates)
            if self._carry is not None and not colour.any():  # it left the lower face: where it was
                colour = sighting.found = self._follow(sighting, self._carry[0], self._carry[2], candidates)
                carried = bool(colour.any())
            came_in = None
            if candidates is not None and mouth is not None:  # the mouth is learnt: keep out what comes in
                came_in = coming_in(sighting.roi, sighting.regions, candidates, s)
            self._learn_mouth(sighting.roi, sighting.regions, hands | colour, face_width, came_in)
        return self._patch_from(region, sighting, colour, hands, face_width), sighting, carried

    def _patch_from(self, region, sighting: _Sighting | None, colour: np.ndarray | None, hands: np.ndarray,
                    face_width: float) -> OcclusionPatch | None:
        """The frame-size patch of what was found on the analysis grid: the colour cue's object (seen in
        `sighting`) snapped to the frame's edges (`refine`), drawn hands feathered; None when nothing was."""
        s = self.settings
        x0, y0, x1, y1 = region
        if colour is None or not colour.any():
            if not hands.any():
                return None
            soft = _feather(hands, s.feather * face_width)
        elif s.refine > 0:
            soft = _fine_mask(sighting.crop, sighting.roi, colour, face_width, s)
            if hands.any():  # drawn from landmarks: no edge to snap to, feathered as always
                hand_soft = _feather(hands, s.feather * face_width)
                soft = np.maximum(soft, cv2.resize(hand_soft, soft.shape[::-1], interpolation=cv2.INTER_LINEAR))
        else:
            soft = _feather(hands | colour, s.feather * face_width)
        full = cv2.resize(soft, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
        return _trim(OcclusionPatch((x0, y0, x1, y1), full), s.min_value)

    def _follow(self, sighting: _Sighting, other: _Sighting, cells: np.ndarray,
                candidates: ColourCandidates | None = None) -> np.ndarray:
        """The colour cue on `sighting`, seeded also where the `other` frame's object may lie now
        (`_where_it_may_be`), in its colours (`cells`, grown): the same object, there off the lower face.
        `candidates`: the sighting's own `colour_candidates` when the caller made them already (the seed does not
        change them)."""
        s = self.settings
        may_lie = _where_it_may_be(other.found, other, sighting)
        like = cells.ravel()[_colour_bins(sighting.roi, s.object_bins)].astype(np.uint8) * 255
        regions = sighting.regions | {"seed": sighting.regions["seed"] | (may_lie & like)}
        return colour_occluders(sighting.roi, regions, sighting.face_width, s, self._mouth_model(), candidates)

    def _object_cells(self, sighting: _Sighting) -> np.ndarray | None:
        """The colour cells (grown) of the object where it covers the lower face itself, None where it does not
        cover enough of it (`min_area`)."""
        s = self.settings
        on_lower_face = (sighting.found > 0) & (sighting.regions["seed"] > 0)
        if np.count_nonzero(on_lower_face) < s.min_area * max(1, sighting.regions["lower_face"]):
            return None
        return _grown_cells(_cells_of(sighting.roi, on_lower_face, s.object_bins))

    def _next_carry(self, sighting: _Sighting | None, carried: bool) -> tuple | None:
        """What the next frame may follow when its own search finds nothing (`carry_frames`): an object kept
        whole for `carry_after` frames in a row (found, or held over a dropout) that slides off the lower face
        (beside the jaw, below the chin) is followed from where it was, in its colours on the lower face, for up to
        `carry_frames` frames. A brief find (a false one is brief) is never carried, nor anything for ever."""
        s = self.settings
        if sighting is None or s.carry_frames <= 0 or s.object_bins <= 0 or not sighting.found.any():
            return None
        if carried:
            _, frames, cells = self._carry
            return (sighting, frames + 1, cells) if frames + 1 < s.carry_frames else None
        if self._run < s.carry_after:
            return None
        cells = self._object_cells(sighting)
        return None if cells is None else (sighting, 0, cells)

    def _look_back(self, sighting: _Sighting) -> None:
        """Follow an object found for the first time back over the last frames (`revisions`), while they show it."""
        s = self.settings
        cells = self._object_cells(sighting) if s.object_bins > 0 else None
        if cells is None:
            return
        later = sighting
        for back, earlier in enumerate(reversed(self._recent), start=1):
            if back > s.look_back or earlier.found.any():
                return
            found = self._follow(earlier, later, cells)
            if not found.any():
                return
            earlier.found = found
            self._revise(back, earlier, self._patch_from(earlier.region, earlier, found,
                                                         np.zeros(earlier.small_hw, np.uint8), earlier.face_width))
            later = earlier

    def _look_back_hands(self, now: _Sighting, skipped: int) -> None:
        """A hand found where none was, after `skipped` frames the palm detector did not run on (`hand_every`):
        look for it in those frames too, newest first, while they show it (up to `look_back`; `revisions`). So a
        hand is masked from at most `hand_every - 1 - look_back` frames after it came into sight, at the cost of a
        palm detector run and a few tracking runs only where one came."""
        s = self.settings
        earlier_frames = list(reversed(self._recent))[: min(skipped, s.look_back)]
        seen = self._hands.followed_back([(now.frame, now.face_box, now.landmarks)]
                                         + [(e.frame, e.face_box, e.landmarks) for e in earlier_frames])
        next(seen)  # this frame: the model finds the hand here first
        for back, (earlier, hands) in enumerate(zip(earlier_frames, seen, strict=True), start=1):
            if not hands:
                return
            drawn = _hands_on_grid(hands, earlier.to_roi, earlier.small_hw, s)
            self._revise(back, earlier, self._patch_from(earlier.region, earlier, None, drawn, earlier.face_width))

    def _revise(self, back: int, earlier: _Sighting, found: OcclusionPatch | None) -> None:
        """Grow the mask handed out `back` frames ago (`earlier`'s) by what was found there later (`revisions`)."""
        grown = _union_max([(earlier.patch, 1.0), (found, 1.0)], self.settings.min_value)
        self.frames_with_mask += int(earlier.patch is None and grown is not None)
        earlier.patch = grown
        if grown is not None:
            self._revised.append((back, grown))

    def _colour_due(self) -> bool:
        """The colour cue runs on every frame while a mask is live (something was found in the last frames) and
        until the shot's mouth colours are learnt, else on every `colour_every`-th frame: an object coming in is
        found that many frames late at most, and the frames it skipped are searched then (`_look_back`: they keep
        a `_Sighting` whose analysis is made only if asked for)."""
        self._colour_calls += 1
        if self.mode != "auto":
            return False
        s = self.settings
        learning = s.mouth_frames > 0 and self._mouth_frames < s.mouth_frames
        return self._previous is not None or learning or (self._colour_calls - 1) % s.colour_every == 0

    def _mouth_model(self) -> np.ndarray | None:
        """The clean lips and mouth colours of this shot (cells seen in >= 2 pixels, grown by one cell), once
        learnt long enough. The set only grows: it is regrown only when it gained a cell."""
        if self._mouth_counts is None or self._mouth_frames < self.settings.mouth_frames:
            return None
        seen = self._mouth_counts >= 2
        size = int(np.count_nonzero(seen))
        if self._mouth_grown is None or size != self._mouth_grown[0]:
            self._mouth_grown = (size, _grown_cells(seen))
        return self._mouth_grown[1]

    def _learn_mouth(self, roi: np.ndarray, regions: dict, found: np.ndarray, face_width: float,
                     came_in: np.ndarray | None = None) -> None:
        """Add this frame's lip and open-mouth colours, away from anything found in front of them and from what
        is coming in over them (`came_in`, see `coming_in`), to the shot's mouth model (a frame whose mouth is
        mostly covered by what was found adds nothing)."""
        s = self.settings
        if s.mouth_frames <= 0:
            return
        area = (regions["lips"] > 0) | (regions["mouth"] > 0)
        if found.any():
            covered = cv2.dilate(found, _disk(max(1.0, s.close * face_width)))
            free = area & (covered == 0)
            if free.sum() < 0.5 * area.sum():
                return
            area = free
        if came_in is not None:
            area &= came_in == 0
        counts = _cells_of(roi, area, s.colour_bins)
        if self._mouth_counts is None:
            self._mouth_counts = counts
        else:
            self._mouth_counts += counts
        self._mouth_frames += 1

    def _merge(self, current: OcclusionPatch | None, core: int, carried: bool = False) -> OcclusionPatch | None:
        """max(current, decay x previous) over the union of their boxes, and the last frame's own detection at
        full strength where this frame found under `hold` of it (a dropout: the decay alone would leave 0.6 of
        it, 40 % of the edit showing through the occluder for that frame; an object that merely moved is found
        whole and is not held, so no trail is kept behind it); None once it has faded out. `core`: the pixels
        `current` keeps whole (`_core`). `carried`: `current` was found only by following the last frame's object
        (`_next_carry`), which may have lost its part on the face: the last frame's is held too."""
        s = self.settings
        parts = [(current, 1.0)]
        last, last_core = self._last_found
        if s.hold > 0 and last is not None and (carried or core < s.hold * last_core):
            parts.append((last, 1.0))
        previous = self._previous
        if previous is not None and s.decay > 0 and float(previous.mask.max()) * s.decay >= s.min_value:
            parts.append((previous, s.decay))
        return _union_max(parts, s.min_value)

    def close(self) -> None:
        if self._hands is not None:
            self._hands.close()

    def __enter__(self) -> OccluderMasker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
