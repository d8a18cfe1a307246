"""The hand cue: MediaPipe Hands (palm detector + 21-point hand landmarks, the `hand_landmark` and
`palm_detection` models shipped inside the mediapipe wheel) on a search region around and below the face (hands
arrive from there).

While no hand is in sight the palm detector runs only every `hand_every`-th frame (it costs ~9 ms on a CPU core);
once a hand is found it is tracked on every frame, and so is a hand seen near the mouth that does not count yet
(it may cover the lips next). A hand that comes to count is tracked back over the frames right before where none
did (skipped, or seen but not counted; up to `look_back`: `HandFinder.followed_back`, used by the masker).
Its pixels: the palm's convex hull plus a capsule per finger, grown a little (`draw_hand`). A hand counts only
with its fingers over the face or beside it, no lower than the chin (a neck can read as a hand), and the palm
detector also fires on faces: a small "hand" whose wrist lies on the face's edge is the face itself and is dropped
(`not_the_face`) unless the lips no longer show under it.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

from ..settings import OcclusionSettings
from .colour import INNER_LIPS, OUTER_LIPS
from .geometry import region_around

# MediaPipe hand: the palm polygon and the five finger chains (landmark 0 is the wrist).
PALM = (0, 1, 2, 5, 9, 13, 17)
FINGERS = ((1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))
FINGERTIPS = tuple(chain[-1] for chain in FINGERS)
# Face mesh points on the cheeks (beside the nose, beside the mouth): the skin the lips are told from.
CHEEKS = {468: (50, 280, 205, 425), 478: (50, 280, 205, 425)}


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


def hands_on_grid(hands: list[np.ndarray], to_roi, shape, settings: OcclusionSettings) -> np.ndarray:
    """uint8 {0, 255}: `hands` (frame pixels) drawn on an analysis grid of `shape` (`to_roi`: frame -> grid)."""
    drawn = np.zeros(shape, np.uint8)
    for hand in hands:
        draw_hand(drawn, to_roi(hand), settings.finger_width, settings.hand_dilate)
    return drawn


class LipsAndCheeks:
    """The lip ring (outer lips less the inner ones) and four cheek points of one face in one frame, made once and
    read for every hand: their median green chromaticity g / (r + g + b). Lips are redder than skin: their green is
    0.01-0.10 below the cheeks' on the corpus's faces, while a hand over them reads within -0.004 and +0.06 of the
    cheeks. Layouts without cheek points see nothing."""

    def __init__(self, frame: np.ndarray, landmarks: np.ndarray, face_width: float, settings: OcclusionSettings):
        self.settings = settings
        self.ring = self.cheeks = None
        layout = len(landmarks)
        if layout not in CHEEKS:
            return
        points = np.asarray(landmarks, np.float32)[:, :2]
        x0, y0 = (max(0, int(v)) for v in np.floor(points.min(axis=0)))
        x1, y1 = (int(v) + 1 for v in np.ceil(points.max(axis=0)))
        self.crop, self.origin = frame[y0:y1, x0:x1], np.array([x0, y0], np.float32)
        ring = np.zeros(self.crop.shape[:2], np.uint8)
        cv2.fillPoly(ring, [np.round(points[list(OUTER_LIPS[layout])] - self.origin).astype(np.int32)], 1)
        cv2.fillPoly(ring, [np.round(points[list(INNER_LIPS[layout])] - self.origin).astype(np.int32)], 0)
        cheeks = np.zeros_like(ring)
        for index in CHEEKS[layout]:
            x, y = np.round(points[index] - self.origin).astype(int)
            cv2.circle(cheeks, (int(x), int(y)), max(2, round(0.05 * face_width)), 1, -1)
        self.ring, self.cheeks = ring > 0, cheeks > 0

    def _drawn(self, hand: np.ndarray) -> np.ndarray:
        drawn = np.zeros(self.crop.shape[:2], np.uint8)
        draw_hand(drawn, np.asarray(hand, np.float64) - self.origin, self.settings.finger_width,
                  self.settings.hand_dilate)
        return drawn > 0

    def _under(self, hand: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The ring's part under `hand` and the hand's pixels, or None when that part is under `lips_min_cover` of
        the ring."""
        drawn = self._drawn(hand)
        covered = self.ring & drawn
        return (covered, drawn) if covered.sum() >= self.settings.lips_min_cover * max(1, int(self.ring.sum())) else None

    def green(self, hand: np.ndarray | None = None) -> tuple[float | None, float | None]:
        """(lips, cheeks); with `hand`, of the ring's part that hand covers (None when that is under `lips_min_cover`
        of the ring) and of the cheeks it leaves free. None where too few pixels are seen."""
        if self.ring is None:
            return None, None
        ring, cheeks = self.ring, self.cheeks
        if hand is not None:
            under = self._under(hand)
            if under is None:
                return None, None
            ring, cheeks = under[0], cheeks & ~under[1]
        return self._median_green(ring), self._median_green(cheeks)

    def _median_green(self, where: np.ndarray) -> float | None:
        pixels = self.crop[where]
        if len(pixels) < 20:
            return None
        pixels = pixels.astype(np.float32) + 1.0
        return float(np.median(pixels[:, 1] / pixels.sum(axis=1)))


def follows(hand: np.ndarray, before) -> bool:
    """Whether `hand` is one of the hands `before` (the frame before's, or the last ones counted while a lost hand
    is held), moved on: the centre of its 21 points lies within half that hand's palm length of that hand's. The
    centre, not each point: the model refits a hand's shape from one frame to the next (a palm 0.30 W long, then
    0.41 W: its points moved 0.67 palm on average, its centre 0.38)."""
    return any(np.linalg.norm(hand.mean(axis=0) - other.mean(axis=0)) < 0.5 * np.linalg.norm(other[9] - other[0])
               for other in before)


def over_the_face(hand: np.ndarray, landmarks: np.ndarray, face_width: float, settings: OcclusionSettings) -> bool:
    """Whether `hand` lays its fingers over the face or beside it: `hand_min_on_face` of its 21 points inside the
    face's outline (the landmark hull) or within `hand_face_reach` x W beside it, no lower than the chin, or a
    fingertip within `hand_tip_reach` x W of the outer lips. A hand covers the mouth only so. A neck and collarbone
    read as a hand of a real hand's size, its wrist below the chin and its fingers along the collarbone, had 0-3
    inside and covered a whole chin (docs/faces.md "Occlusion"); a real hand held beside the mouth has 2-5 inside
    and its fingers beside the cheek, over the edited region's side; a finger raised to the lips from a fist under
    the chin has 2-4 inside, its tip on the lips."""
    points = np.asarray(landmarks, np.float32)[:, :2]
    outline = cv2.convexHull(points)
    chin = float(outline[:, 0, 1].max())
    reach = settings.hand_face_reach * face_width
    on_face = sum(y <= chin and cv2.pointPolygonTest(outline, (float(x), float(y)), True) >= -reach
                  for x, y in hand[:, :2])
    if on_face >= settings.hand_min_on_face:
        return True
    lips = OUTER_LIPS.get(len(landmarks))
    return lips is not None and any(
        cv2.pointPolygonTest(points[list(lips)], (float(x), float(y)), True) >= -settings.hand_tip_reach * face_width
        for x, y in hand[list(FINGERTIPS), :2])


def not_the_face(hand: np.ndarray, landmarks: np.ndarray, face_width: float, settings: OcclusionSettings,
                 hides_lips=None) -> bool:
    """False for a "hand" that is not a hand in front of the face: one not `over_the_face`, or the face itself.

    The palm detector fires on faces (its authors: hard to avoid, it detects the palm area): the landmarks then lie
    along the jaw and lips, the wrist on the face's edge, the palm (wrist to middle-finger base) 0.24-0.48 W. A
    "hand" whose wrist lies within `hand_wrist_band` x W of the outline counts with a palm of `hand_min_palm` x W,
    or where `hides_lips(hand)` says it hides the lips: real hands held to faces measure as small (0.39-0.47 W in
    photos), but the lips under a false hand still show. A smaller hand whose wrist lies further below or beside
    the face (an arm reaching in) is kept."""
    s = settings
    if not over_the_face(hand, landmarks, face_width, s):
        return False
    if np.linalg.norm(hand[9] - hand[0]) >= s.hand_min_palm * face_width:
        return True
    outline = cv2.convexHull(np.asarray(landmarks, np.float32)[:, :2])
    wrist = (float(hand[0][0]), float(hand[0][1]))
    if cv2.pointPolygonTest(outline, wrist, True) < -s.hand_wrist_band * face_width:
        return True
    return hides_lips is not None and hides_lips(hand)


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
        self._uncounted = 0  # frames since a hand last counted (the palm detector skipped them, or no hand counted)
        self._watching = False  # the last run saw a hand that may count soon (`_worth_watching`): run on every frame
        self._lips: np.ndarray | None = None  # the face's own (lips, cheeks) green, where no hand covers the lips
        self._seen: list[np.ndarray] = []  # every hand the last model run reported, counted or not
        self.unsearched = 0  # when the last call found a hand where none was: the frames right before it where
        # none counted (the palm detector skipped them, `hand_every`, or saw the hand but it did not count yet), else 0
        self.runs = 0

    def _model(self):
        import mediapipe as mp

        s = self.settings
        return mp.solutions.hands.Hands(
            static_image_mode=False, max_num_hands=2, model_complexity=s.hand_model_complexity,
            min_detection_confidence=s.hand_min_score, min_tracking_confidence=s.hand_min_score)

    def reset(self) -> None:
        """Forget the hands seen so far, the model's own tracking included (a shot cut: nothing carries over)."""
        self._region, self._calls, self._last, self._missed, self._uncounted, self.unsearched = None, 0, [], 0, 0, 0
        self._lips, self._seen, self._watching = None, [], False
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
        self._region = region_around(face_box, s.hand_side, 0.0, s.hand_below, frame_hw)
        return self._region

    def __call__(self, frame: np.ndarray, face_box, face_landmarks=None) -> list[np.ndarray]:
        """Hands (each (21, 2) frame pixels) seen in this frame, or held from the last few frames. With the
        face's landmarks, a "hand" that is the face itself is dropped (`not_the_face`). A hand near the mouth that
        does not count (yet) is watched on every frame (`_worth_watching`): it may cover the lips next."""
        self._calls += 1
        self.unsearched = 0
        if not (self._last or self._watching) and (self._calls - 1) % self.settings.hand_every:
            self._uncounted += 1
            return []
        region = self._search_region(face_box, frame.shape[:2])
        if region is None:
            self._uncounted += 1
            return []
        lips = None if face_landmarks is None else LipsAndCheeks(
            frame, face_landmarks, float(face_box[2] - face_box[0]), self.settings)
        hands = self._run(self._hands, frame, region, face_box, face_landmarks, self._last, lips)
        if lips is not None:
            self._learn_lips(lips)
        # (a frame where a hand counts runs the model on the next one anyway: no need to look at the rest)
        self._watching = not hands and face_landmarks is not None and self._worth_watching(face_landmarks, face_box)
        if hands:
            if not self._last:  # a hand just found: the frames right before may show it too
                self.unsearched = self._uncounted
            self._last, self._missed, self._uncounted = hands, 0, 0
            return hands
        if self._last and self._missed < self.settings.hand_hold:
            self._missed += 1
            return self._last
        self._last, self._missed = [], 0
        self._uncounted += 1
        return []

    def _worth_watching(self, landmarks: np.ndarray, face_box) -> bool:
        """Whether the last run saw a hand that may count on the next frames: over the face, a point of it within
        `hand_watch_reach` x W of the mouth's centre. Real hands on their way over the lips were within 0.49 W; the
        palm detector's steady false hand on an ear (lp_src_s32, 3 s) 0.70-0.78 W away would otherwise have the
        model run on every frame."""
        width = float(face_box[2] - face_box[0])
        lips = INNER_LIPS.get(len(landmarks))
        mouth = None if lips is None else np.asarray(landmarks, np.float64)[list(lips), :2].mean(axis=0)
        return any((mouth is None or np.linalg.norm(hand[:, :2] - mouth, axis=1).min()
                    <= self.settings.hand_watch_reach * width) and over_the_face(hand, landmarks, width, self.settings)
                   for hand in self._seen)

    def _learn_lips(self, lips: LipsAndCheeks) -> None:
        """The face's own lips and cheeks, averaged over the frames where the model saw no hand over the lips
        (counted or not: the hand over them may be a real one not yet counted)."""
        if any(lips.green(hand)[0] is not None for hand in self._seen):
            return
        ring, cheeks = lips.green()
        if ring is not None and cheeks is not None:
            seen = np.array([ring, cheeks])
            self._lips = seen if self._lips is None else 0.8 * self._lips + 0.2 * seen

    def _hides_lips(self, lips: LipsAndCheeks, hand: np.ndarray) -> bool:
        """Whether `hand` covers the lips and they no longer show there: the ring under it is less than
        `lips_hidden_share` as far below the cheeks' green as this face's lips are (the cheeks of this frame, or
        the learnt ones where the hand covers them). Never on a face whose lips are as green as its cheeks
        (`lips_min_contrast`). Before the face's lips were seen in the shot (a hand there from its first frame),
        the ring under the hand must be greener than this frame's cheeks by `lips_unseen_min`, as no face's own
        lips were on the corpus."""
        s = self.settings
        ring, cheeks = lips.green(hand)
        if ring is None:
            return False
        if self._lips is None:
            return cheeks is not None and ring - cheeks > s.lips_unseen_min
        if self._lips[0] - self._lips[1] > -s.lips_min_contrast:
            return False
        cheeks = self._lips[1] if cheeks is None else cheeks
        return ring - cheeks > s.lips_hidden_share * (self._lips[0] - self._lips[1])

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
        counted = self._last  # the first frame is the forward model's last one
        for frame, face_box, face_landmarks in frames:
            counted = self._run(self._backwards, frame, self._region, face_box, face_landmarks, counted)
            yield counted

    def _run(self, model, frame: np.ndarray, region, face_box, face_landmarks, counted=(), lips=None) -> list:
        """The hands `model` sees in the frame's search `region`, in frame pixels, less those that are the face.
        A hand that follows one of `counted` (the hands that counted in the frame before) need not hide the lips
        again to count: the model tracks it on as it slides off them, beside the mouth. `lips`: the frame's
        `LipsAndCheeks`, when the caller has made it."""
        x0, y0, x1, y1 = region
        crop, scale = self._model_input(frame[y0:y1, x0:x1])
        self.runs += 1
        result = model.process(np.ascontiguousarray(crop))
        hands = []
        for landmarks in result.multi_hand_landmarks or []:
            pts = np.array([(p.x * crop.shape[1], p.y * crop.shape[0]) for p in landmarks.landmark])
            hands.append(pts / scale + np.array([x0, y0], dtype=np.float64))
        self._seen = hands
        if face_landmarks is not None:
            width = float(face_box[2] - face_box[0])
            lips = lips or LipsAndCheeks(frame, face_landmarks, width, self.settings)

            def hides_lips(hand):
                return follows(hand, counted) or self._hides_lips(lips, hand)

            hands = [hand for hand in hands if not_the_face(hand, face_landmarks, width, self.settings, hides_lips)]
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

