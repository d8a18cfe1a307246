"""`OccluderMasker`: both cues on every frame of one face, and what ties the frames of a shot together.

- The mask is feathered at its edge (grown by `feather` first, so the occluder itself stays at 1; the colour cue's
  edge, found on the coarse analysis grid, is first snapped to the frame's own edges by a guided filter, `refine`)
  and steady in time: each frame's mask is `max(new, decay x previous)`, so a leaving occluder fades out, and a
  frame that finds under `hold` of the last frame's occluder (a detection dropout) also keeps the last frame's
  detection whole.
- The shot's mouth colours: the lip, teeth and cavity colours are learnt where nothing covers them (state reset at
  `reset()`; after the first frames, an object that reaches the lips before it is found teaches it nothing:
  `coming_in`); once `mouth_frames` frames were seen the colour cue uses them.
- Backwards: an object found on the lower face for the first time is followed back, in its own colours and from
  where it lies, over up to `look_back` earlier frames (it came in from beside the jaw or below the chin, where
  alone it is not taken for an occluder); a hand found where none was is tracked back over the frames the palm
  detector skipped. `revisions()` gives those frames' grown masks, so a caller that uses a frame's mask
  `look_back` frames after it (the face pass does) misses nothing.
- Forwards: an object kept whole for `carry_after` frames in a row that slides off the lower face is followed from
  where it was (in the frame, or moved with the face) for up to `carry_frames` frames (a false find is brief:
  never carried).
- While nothing is found (and once the shot's mouth colours are learnt) the colour cue runs on every
  `colour_every`-th frame only: an object coming in on a skipped frame is found in a later one and followed back
  over the skipped frames like any other.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from ..settings import OCCLUSION_MODES, OcclusionSettings, load_faces_config
from .colour import (
    INNER_LIPS,
    ColourCandidates,
    cells_of,
    colour_bins,
    colour_candidates,
    colour_occluders,
    coming_in,
    face_regions,
    grown_cells,
)
from .geometry import OcclusionPatch, analysis_grid, disk, region_around
from .hands import HandFinder, hands_on_grid

# `_fine_mask`: the found pixels, upscaled linearly to the finer grid, stay found where above this (all but the
# outer quarter of an analysis pixel at their edge), whatever the guided filter says.
FOUND_CORE = 0.75


def _feather(binary: np.ndarray, width_px: float) -> np.ndarray:
    """Grow by `width_px`, then blur over the same width: 1 on the whole occluder, a soft ramp outside it."""
    radius = max(1, int(round(width_px)))
    grown = cv2.dilate(binary, disk(radius + 1))  # +1: the upscale to the frame must not soften the edge
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
    """Per-frame occluder mask of one face, with temporal state (the interface: `latentsync.faces.occlusion`)."""

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
        self._landmarks: np.ndarray | None = None  # the last frame's face landmarks (for a bridged frame: `patch`)
        self.frames = 0
        self.frames_with_mask = 0

    def reset(self) -> None:
        """Forget the temporal state (call at shot cuts): the next mask owes nothing to earlier frames."""
        self._previous, self._last_found = None, (None, 0)
        self._mouth_counts, self._mouth_frames, self._mouth_grown = None, 0, None
        self._colour_calls, self._run, self._carry, self._landmarks = 0, 0, None, None
        self._recent.clear()
        if self._hands is not None:
            self._hands.reset()

    def __call__(self, frame: np.ndarray, face_box, landmarks) -> np.ndarray | None:
        patch = self.patch(frame, face_box, landmarks)
        return None if patch is None else patch.full(frame.shape[:2])

    def patch(self, frame: np.ndarray, face_box, landmarks) -> OcclusionPatch | None:
        """The mask as an `OcclusionPatch` (box + mask), or None when nothing covers the face. An object seen
        here for the first time may also grow the masks of the last frames: see `revisions`.

        A frame with a face box but no landmarks is one the face pass bridged: the landmark model lost the face
        for a few frames, often under the very occluder, and the edit goes on with interpolated points. It is
        searched with the last frame's landmarks (its box is that frame's too), so a hand that covers the face
        until the face mesh gives up is not painted over there (a photo hand on vr_face1: frames 19-22 lost)."""
        self.frames += 1
        self._revised = []
        if self.mode == "off":
            return None
        if face_box is None:
            self._landmarks = None
        elif landmarks is None:
            landmarks = self._landmarks
        else:
            self._landmarks = landmarks
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
        region = region_around(face_box, s.roi_side, s.roi_top, s.roi_bottom, frame_hw)
        if region is None:
            return None, None, False
        region, small_hw = analysis_grid(region, s.analysis_width)
        x0, y0, x1, y1 = region
        scale = small_hw[1] / (x1 - x0)
        origin = np.array([x0, y0], dtype=np.float64)

        def to_roi(points):
            return (np.asarray(points, np.float64) - origin) * scale

        face_width = (face_box[2] - face_box[0]) * scale
        hands = hands_on_grid(self._hands(frame, face_box, landmarks) if self._hands is not None else [], to_roi,
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
        like = cells.ravel()[colour_bins(sighting.roi, s.object_bins)].astype(np.uint8) * 255
        regions = sighting.regions | {"seed": sighting.regions["seed"] | (may_lie & like)}
        return colour_occluders(sighting.roi, regions, sighting.face_width, s, self._mouth_model(), candidates)

    def _object_cells(self, sighting: _Sighting) -> np.ndarray | None:
        """The colour cells (grown) of the object where it covers the lower face itself, None where it does not
        cover enough of it (`min_area`)."""
        s = self.settings
        on_lower_face = (sighting.found > 0) & (sighting.regions["seed"] > 0)
        if np.count_nonzero(on_lower_face) < s.min_area * max(1, sighting.regions["lower_face"]):
            return None
        return grown_cells(cells_of(sighting.roi, on_lower_face, s.object_bins))

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
            drawn = hands_on_grid(hands, earlier.to_roi, earlier.small_hw, s)
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
            self._mouth_grown = (size, grown_cells(seen))
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
            covered = cv2.dilate(found, disk(max(1.0, s.close * face_width)))
            free = area & (covered == 0)
            if free.sum() < 0.5 * area.sum():
                return
            area = free
        if came_in is not None:
            area &= came_in == 0
        counts = cells_of(roi, area, s.colour_bins)
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
