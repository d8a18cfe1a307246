"""Occluder masks (latentsync/faces/occlusion/) on generated frames: the astronaut's face (scikit-image) with
drawn occluders in front of her mouth; corpus checks skip when ../shared is absent."""

from __future__ import annotations

import dataclasses
from itertools import islice

import cv2
import numpy as np
import pytest

from latentsync.faces.detector import FaceDetector
from latentsync.faces.occlusion import OccluderMasker, OcclusionPatch, edited_region, keep_occluders
from latentsync.faces.occlusion.hands import draw_hand, not_the_face
from latentsync.faces.settings import load_faces_config
from latentsync.faces.video import AlignmentTrack
from latentsync.settings import SettingsError
from tests.helpers import SHARED


@pytest.fixture(scope="module")
def face():
    """(frame, landmark box, landmarks, mouth centre, face width) of the astronaut photo."""
    from skimage.data import astronaut

    frame = np.ascontiguousarray(astronaut())
    with FaceDetector(backend="mediapipe") as detector:
        result = detector.detect(frame)
    assert result is not None
    landmarks = result.landmarks
    box = np.concatenate([landmarks.min(axis=0), landmarks.max(axis=0)])
    lips = landmarks[[13, 14, 78, 308]]
    return frame, box, landmarks, lips.mean(axis=0), float(box[2] - box[0])


def face_hull(shape, landmarks) -> np.ndarray:
    """uint8 {0, 1}: the landmarks' convex hull in a frame of `shape` (an occluder's part in front of the face)."""
    hull = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(landmarks.astype(np.int32)), 1)
    return hull


def with_microphone(frame, mouth, width):
    """The frame with a textured dark microphone (head + handle) at the chin, below the lips, and its mask.

    (A microphone centred on the lips is not found by the colour cue: docs/faces.md "Occlusion".)"""
    return draw_microphone(frame, (int(mouth[0] + 0.1 * width), int(mouth[1] + 0.3 * width)), 0.15, width)


def draw_microphone(frame, centre, radius: float, width):
    """A dark textured microphone head (radius x face width) at `centre`, its handle down to the frame's bottom."""
    out, mask = frame.copy(), np.zeros(frame.shape[:2], np.uint8)
    cx, cy = centre
    cv2.rectangle(mask, (cx - int(0.05 * width), cy), (cx + int(0.05 * width), frame.shape[0] - 1), 1, -1)
    cv2.circle(mask, (cx, cy), int(radius * width), 1, -1)
    rng = np.random.default_rng(0)
    texture = np.clip(45 + rng.normal(0, 6, frame.shape), 0, 255).astype(np.uint8)
    texture[::4] = 90
    out[mask > 0] = texture[mask > 0]
    return out, mask > 0


def with_pen(frame, mouth, width):
    """A blue pen across the lower face, through the mouth corner."""
    out, mask = frame.copy(), np.zeros(frame.shape[:2], np.uint8)
    centre = (float(mouth[0] - 0.1 * width), float(mouth[1] + 0.12 * width))
    box = cv2.boxPoints((centre, (1.1 * width, 0.07 * width), -25.0)).astype(np.int32)
    cv2.fillConvexPoly(mask, box, 1)
    out[mask > 0] = (35, 70, 170)
    return out, mask > 0


def with_pen_below_the_lips(frame, mouth, width):
    """A blue pen across the chin, below the lower lip (found in the shot's first frame)."""
    out, mask = frame.copy(), np.zeros(frame.shape[:2], np.uint8)
    centre = (float(mouth[0]), float(mouth[1] + 0.25 * width))
    box = cv2.boxPoints((centre, (1.0 * width, 0.07 * width), -10.0)).astype(np.int32)
    cv2.fillConvexPoly(mask, box, 1)
    out[mask > 0] = (35, 70, 170)
    return out, mask > 0


def with_microphone_on_the_mouth(frame, mouth, width):
    """A dark textured microphone head centred on the lips (the open mouth behind it), its handle below."""
    return draw_microphone(frame, (int(mouth[0]), int(mouth[1] + 0.05 * width)), 0.17, width)


def test_settings_come_from_faces_yaml():
    settings = load_faces_config().occlusion
    assert settings.mode in ("auto", "hands", "off")
    assert 0 < settings.decay < 1 and settings.hand_every >= 1
    with pytest.raises(SettingsError):
        load_faces_config(overrides=["occlusion.mode=sometimes"])
    with pytest.raises(ValueError):
        OccluderMasker("sometimes", settings)


def test_clean_face_gives_no_mask(face):
    frame, box, landmarks, _, _ = face
    with OccluderMasker("auto") as masker:
        assert all(masker(frame, box, landmarks) is None for _ in range(3))  # smiling, teeth showing


def with_sheen(frame, landmarks, width):
    """The face with a pale, bright sheen (as powder or a hard light leaves on skin) from the cheekbone down past
    the mouth corner: the cheekbone part lies where the skin colour is sampled, the lower part on the lower face."""
    band = np.zeros(frame.shape[:2], np.uint8)
    corner = landmarks[61] + np.array([-0.07 * width, 0.02 * width])
    points = np.array([landmarks[116], landmarks[50], corner, landmarks[172]], np.int32)
    cv2.polylines(band, [points], False, 1, max(3, int(0.07 * width)))
    weight = cv2.GaussianBlur(band.astype(np.float32), (0, 0), 0.02 * width)[..., None]  # soft edges
    pixels = frame.astype(np.float32)
    pale = 0.1 * pixels + 0.9 * 1.15 * pixels.mean(axis=2, keepdims=True)
    out = np.clip((1 - weight) * pixels + weight * pale, 0, 255).astype(np.uint8)
    return out, band > 0


def test_a_faces_own_sheen_is_not_an_occluder(face):
    """Pale skin as bright as the face's own sheen is skin; a dark microphone over the same sheen is still found
    (st_WDA_KatieHill's cheek highlight was masked in her frames 33-55: docs/faces.md "Occlusion")."""
    frame, box, landmarks, mouth, width = face
    shiny, sheen = with_sheen(frame, landmarks, width)
    settings = load_faces_config().occlusion
    blind = load_faces_config(overrides=["occlusion.sheen_share=0"]).occlusion
    with OccluderMasker("auto", blind) as masker:
        mask = masker(shiny, box, landmarks)
        assert mask is not None and (mask[sheen] >= 0.99).mean() > 0.2  # without the rule the sheen is an object
    with OccluderMasker("auto", settings) as masker:
        assert masker(shiny, box, landmarks) is None
    occluded, occluder = with_microphone(shiny, mouth, width)
    hull = face_hull(frame.shape, landmarks)
    with OccluderMasker("auto", settings) as masker:
        mask = masker(occluded, box, landmarks)
    assert mask is not None and (mask[occluder & (hull > 0)] >= 0.99).mean() >= 0.9


def test_a_grey_microphone_before_a_dim_face_is_found(face):
    """On a dim face (median luminance ~38) a grey microphone at ~21 was neither a candidate by colour (too dark to
    trust its chromaticity, under `min_luma`) nor too dark (over `dark_ratio` x the face's luminance): the whole
    bench's dim reading kept 47 % of the microphone. Far less saturated than the skin, it is found; the dim face
    alone is not masked."""
    frame, box, landmarks, mouth, width = face
    hull = face_hull(frame.shape, landmarks) > 0
    dim = np.clip(frame.astype(np.float32) * 0.22, 0, 255).astype(np.uint8)
    face_luma = float(np.median(dim[hull].astype(np.float32) @ np.array([0.299, 0.587, 0.114])))
    settings = load_faces_config().occlusion
    grey = 0.55 * face_luma
    assert settings.dark_ratio * face_luma < grey < settings.min_luma  # the band that was blind
    occluded, occluder = draw_microphone(dim, (int(mouth[0] + 0.1 * width), int(mouth[1] + 0.3 * width)), 0.15, width)
    rng = np.random.default_rng(0)
    occluded[occluder] = np.clip(grey + rng.normal(0, 1.0, (int(occluder.sum()), 3)), 0, 255).astype(np.uint8)
    with OccluderMasker("auto", settings) as masker:
        assert masker(dim, box, landmarks) is None
    with OccluderMasker("auto", settings) as masker:
        mask = masker(occluded, box, landmarks)
    assert mask is not None and (mask[occluder & hull] >= 0.99).mean() >= 0.9


def side_lit(frame, landmarks, width, depth: float):
    """The frame under a side light: from the nose tip to the right, within 0.1 x face width, the light falls to
    `depth` of itself (a deep shadow over the right cheek, jaw and neck)."""
    columns = np.arange(frame.shape[1], dtype=np.float32) - landmarks[1, 0]
    light = 1 - (1 - depth) * np.clip(columns / (0.1 * width), 0, 1)
    return np.clip(frame * light[None, :, None], 0, 255).astype(np.uint8)


def test_a_faces_own_shadow_is_not_an_occluder(face):
    """A deep shadow too dark for a colour that covers part of the cheeks sampled above the nose tip is the face's
    own (lp_d20 darkened to 0.35 was masked over its shaded jaw in every frame, 42 % of the edit: docs/faces.md);
    a black object on the lit side of the chin is still found."""
    frame, box, landmarks, mouth, width = face
    shaded = side_lit(frame, landmarks, width, 0.08)
    blind = load_faces_config(overrides=["occlusion.shadow_share=0"]).occlusion
    with OccluderMasker("auto", blind) as masker:
        assert masker(shaded, box, landmarks) is not None  # without the rule the shadow is an object
    with OccluderMasker("auto") as masker:
        assert masker(shaded, box, landmarks) is None
    disc = np.zeros(frame.shape[:2], np.uint8)
    cv2.circle(disc, (int(mouth[0] - 0.12 * width), int(mouth[1] + 0.3 * width)), int(0.15 * width), 1, -1)
    occluded, occluder = shaded.copy(), disc > 0
    noise = np.random.default_rng(0).normal(0, 3, (int(occluder.sum()), 3))
    occluded[occluder] = np.clip(12 + noise, 0, 255).astype(np.uint8)
    with OccluderMasker("auto") as masker:
        mask = masker(occluded, box, landmarks)
    assert mask is not None and (mask[occluder] >= 0.99).mean() >= 0.9


def test_lipstick_is_lips_before_the_shot_shows_its_mouth_colours():
    """A shot's first frames judge the lips by the lip ring's own colour (the shot's mouth colours are not learnt
    yet): st_WDA_KatieHill's deep red lower lip, far from the ring's median, which the ring's pale edge pulls
    towards the skin, was masked as an object in her first frames."""
    from latentsync.faces.video import VideoFaceProcessor
    from latentsync.utils.media import iter_frames

    path = SHARED / "media" / "corpus" / "st_WDA_KatieHill.mp4"
    if not path.is_file():
        pytest.skip(f"corpus clip not available: {path}")
    frames = next(iter(iter_frames(path, chunk_size=8)))
    processor = VideoFaceProcessor(resolution=256)
    try:
        with OccluderMasker("auto") as masker:
            found = [masker.patch(a.frame, a.face_box, a.landmarks) is not None
                     for a in processor.process(iter(frames)) if a.has_face]
    finally:
        processor.close()
    assert len(found) == 8 and not any(found)


@pytest.mark.parametrize("draw", [
    with_microphone,
    pytest.param(with_pen, marks=pytest.mark.xfail(strict=True, reason="goal not met from a shot's first frame (no "
                                                   "mouth colours learnt yet, the open mouth is no candidate): ~70% "
                                                   "of a thin pen across the mouth corner is kept, its part over the "
                                                   "open mouth missed (docs/faces.md 'Occlusion')")),
])
def test_objects_in_front_of_the_mouth_are_kept(face, draw):
    frame, box, landmarks, mouth, width = face
    occluded, occluder = draw(frame, mouth, width)
    with OccluderMasker("auto") as masker:
        mask = masker(occluded, box, landmarks)
    assert mask is not None and mask.shape == frame.shape[:2] and mask.dtype == np.float32
    assert 0.0 <= mask.min() and mask.max() <= 1.0
    hull = face_hull(frame.shape, landmarks)
    on_face = occluder & (hull > 0)  # the part in front of the face (beside it the colour cue does not look)
    assert on_face.sum() > 200
    assert (mask[on_face] >= 0.99).mean() >= 0.9
    eyes = landmarks[[33, 263]].astype(int)
    assert mask[eyes[:, 1], eyes[:, 0]].max() == 0.0  # nothing up at the eyes
    # the composite keeps those pixels exactly
    restored = 255 - occluded
    out = keep_occluders(occluded, restored, mask)
    full = mask >= 1.0
    assert np.array_equal(out[full], occluded[full])
    assert np.array_equal(out[mask == 0], restored[mask == 0])


def test_an_elongated_objects_end_part_of_another_colour_joins_it():
    """A pen's metal tip shares only the pen's short end, so the part rule's border share never holds (in the
    bench it was most of the pen's misses): a piece of other colours past the end of an elongated object, within
    its width, joins; a piece beside it (jaw shade, lips), or past the side of a round object, does not."""
    from latentsync.faces.occlusion.colour import _with_end_parts

    found, other = np.zeros((60, 100), bool), np.zeros((60, 100), bool)
    found[28:33, 10:70] = True  # a pen, 60 x 5
    other[28:33, 70:82] = True  # its tip, past the right end
    other[33:40, 30:45] = True  # shade below its middle
    joined = _with_end_parts(found, other, 3.0) > 0
    assert joined[28:33, 70:82].all() and not joined[33:40, 30:45].any()
    assert not (_with_end_parts(found, other, 13.0) > 0)[28:33, 70:82].any()  # 12 x longer than wide, not 13
    cup = np.zeros((60, 100), bool)
    cup[10:50, 20:60] = True
    side = np.zeros((60, 100), bool)
    side[20:30, 60:70] = True
    assert not (_with_end_parts(cup, side, 3.0) > 0)[20:30, 60:70].any()


def test_an_elongated_objects_end_takes_pixels_a_face_excuses_only_past_its_end():
    """A grey metal tip as pale as the face's sheen (or over the nose's underside) is no candidate, so the end rule
    had nothing to join (most of the pen's lost tip in the bench): such excused pixels count past the end, within
    the object's width and `reach` x its length, and nowhere else."""
    from latentsync.faces.occlusion.colour import _with_end_parts

    found, nothing, excused = np.zeros((60, 120), bool), np.zeros((60, 120), bool), np.zeros((60, 120), bool)
    found[28:33, 10:70] = True  # a pen, 60 x 5
    excused[28:33, 70:120] = True  # pale pixels from its end on: the tip, then more sheen along the axis
    excused[34:45, 20:60] = True  # sheen beside the pen
    joined = _with_end_parts(found, nothing, 3.0, excused, 0.2) > 0  # up to 0.2 x 59 px past its end
    assert joined[28:33, 70:81].all() and not joined[28:33, 81:].any()
    assert not joined[34:45].any()
    assert not (_with_end_parts(found, nothing, 3.0, excused, 0.0) > 0)[28:33, 70:].any()
    assert not (_with_end_parts(found, nothing, 13.0, excused, 0.2) > 0)[28:33, 70:].any()  # not elongated enough


def test_a_pens_grey_tip_as_pale_as_the_faces_sheen_is_kept(face):
    """The pen's tip over the sheen, in the sheen's own grey: only the end rule's excused pixels keep it."""
    from latentsync.faces.occlusion.geometry import disk

    frame, box, landmarks, mouth, width = face
    shiny, sheen = with_sheen(frame, landmarks, width)
    grey = int(np.median(shiny[sheen].astype(np.float32) @ np.array([0.299, 0.587, 0.114])))
    centre, length, angle = mouth + np.array([0.1, 0.25]) * width, 1.1 * width, 20.0
    pen, tip = np.zeros(frame.shape[:2], np.uint8), np.zeros(frame.shape[:2], np.uint8)
    cv2.fillConvexPoly(pen, cv2.boxPoints((tuple(centre), (length, 0.07 * width), angle)).astype(np.int32), 1)
    tip_centre = centre - 0.4 * length * np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))])
    cv2.fillConvexPoly(tip, cv2.boxPoints((tuple(tip_centre), (0.2 * length, 0.07 * width), angle)).astype(np.int32), 1)
    occluded = shiny.copy()
    occluded[pen > 0] = (35, 70, 170)
    occluded[tip > 0] = (grey, grey, grey + 4)
    on_face = (tip > 0) & (face_hull(frame.shape, landmarks) > 0)
    assert on_face.sum() > 100
    kept, spread = {}, {}
    away = sheen & (cv2.dilate(pen, disk(0.15 * width)) == 0)  # the sheen away from the pen
    for reach in (0.0, load_faces_config().occlusion.end_reach):
        settings = load_faces_config(overrides=[f"occlusion.end_reach={reach}"]).occlusion
        with OccluderMasker("auto", settings) as masker:
            mask = masker(occluded, box, landmarks)
        kept[reach] = (mask[on_face] >= 0.99).mean()
        assert (mask[(pen > 0) & (tip == 0) & (face_hull(frame.shape, landmarks) > 0)] >= 0.99).mean() >= 0.9
        spread[reach] = (mask[away] >= 0.5).mean()
    assert kept[0.0] <= 0.3 and max(kept.values()) >= 0.9, kept
    assert away.sum() > 100 and max(spread.values()) <= spread[0.0] + 0.01, spread  # the rest of the sheen: as before


def test_below_the_chin_an_object_is_followed_straight_down_not_sideways():
    """A handle that goes on down below the chin stays found; the clothes of its colour that touch it beside it do
    not (they cost the microphone most of the edited region below two corpus speakers' chins)."""
    from latentsync.faces.occlusion.colour import _straight_down

    found = np.zeros((40, 60), np.uint8)
    found[5:20, 20:30] = 255  # the head, on the face
    found[20:40, 23:27] = 255  # its handle
    found[25:40, 5:55] = 255  # a dark collar of its colour, joined to it
    below = np.zeros(found.shape, bool)
    below[22:, 10:50] = True  # the zone below the chin, off the face
    out = _straight_down(found, below, 0.0) > 0
    assert out[5:20, 20:30].all() and out[20:40, 23:27].all()  # the object is whole
    assert out[25:40, 20:30].all() and not out[25:40, 10:20].any() and not out[25:40, 30:50].any()
    assert out[25:40, 5:10].all() and out[25:40, 50:55].all()  # beyond the zone: not this rule's
    widened = _straight_down(found, below, 1.0) > 0  # a band that widens by a pixel a row on each side
    assert widened[30, 11:39].all() and not widened[30, 10] and not widened[30, 39:50].any()  # 9 rows in
    assert widened[39, 10:48].all() and not widened[39, 48:50].any()  # 18 rows in
    assert np.array_equal(_straight_down(found, np.zeros(found.shape, bool), 0.0), found)


def test_a_microphone_is_not_followed_into_clothes_of_its_colour_below_the_chin(face):
    frame, box, landmarks, mouth, width = face
    chin = landmarks[152]
    hull = face_hull(frame.shape, landmarks)
    clothes = np.zeros(frame.shape[:2], bool)  # a dark top from just below the chin, as wide as the jaw
    clothes[int(chin[1] + 0.05 * width):, int(chin[0] - 0.3 * width) : int(chin[0] + 0.3 * width)] = True
    clothes &= hull == 0
    dressed = frame.copy()
    rng = np.random.default_rng(1)
    dressed[clothes] = np.clip(40 + rng.normal(0, 5, (int(clothes.sum()), 3)), 0, 255).astype(np.uint8)
    handle_x = mouth[0] + 0.1 * width
    occluded, microphone = draw_microphone(dressed, (int(handle_x), int(mouth[1] + 0.3 * width)), 0.15, width)
    analysed = np.zeros(frame.shape[:2], bool)
    analysed[: int(box[3] + 0.35 * (box[3] - box[1]))] = True  # the colour cue looks no further down
    beside = clothes & analysed & (np.abs(np.arange(frame.shape[1]) - handle_x) > 0.25 * width)[None, :]
    assert beside.sum() > 300

    def masked(chin_spread: float) -> tuple[float, float, float]:
        settings = dataclasses.replace(load_faces_config().occlusion, chin_spread=chin_spread)
        with OccluderMasker("auto", settings) as masker:
            mask = masker(occluded, box, landmarks)
        on_face = (mask[microphone & (hull > 0)] >= 0.99).mean()
        handle = (mask[microphone & (hull == 0) & analysed] >= 0.5).mean()
        return on_face, handle, (mask[beside] >= 0.5).mean()

    assert masked(-1.0)[2] >= 0.9  # followed over any pixel like it (the rule off)
    on_face, handle, clothes_taken = masked(load_faces_config().occlusion.chin_spread)
    assert on_face >= 0.99 and handle >= 0.9
    assert clothes_taken <= 0.3


def test_the_guided_filter_snaps_a_coarse_mask_to_the_objects_edge():
    """The colour cue finds an object on a grid 3x coarser than the frame, where its edge pixels are blurred
    mixes: upscaled, the found edge lies up to an analysis pixel off. The guided filter, fitted on the coarse
    grid and applied to the frame's own pixels, moves it onto the object's edge; a mask without edges stays."""
    from latentsync.faces.occlusion.masker import _guided_filter

    rng = np.random.default_rng(0)
    image = np.clip(rng.normal((200, 150, 130), 6, (90, 120, 3)), 0, 255).astype(np.uint8)  # textured skin
    disc = np.zeros((90, 120), np.uint8)
    cv2.circle(disc, (60, 45), 25, 1, -1)
    image[disc > 0] = (40, 40, 45)  # a dark object
    coarse_image = cv2.resize(image, (40, 30), interpolation=cv2.INTER_AREA)
    found = (cv2.resize(disc.astype(np.float32), (40, 30), interpolation=cv2.INTER_AREA) >= 0.25).astype(np.float32)
    upscaled = cv2.resize(found, (120, 90), interpolation=cv2.INTER_LINEAR) > 0.5
    snapped = _guided_filter(coarse_image, found, image, 2, 1e-3) > 0.5
    wrong_before, wrong_after = int((upscaled != (disc > 0)).sum()), int((snapped != (disc > 0)).sum())
    assert wrong_before > 100 and wrong_after < 0.3 * wrong_before
    flat = np.full((30, 40), 0.7, np.float32)
    assert np.allclose(_guided_filter(coarse_image, flat, image, 2, 1e-3), 0.7, atol=1e-3)


def test_the_found_edge_is_snapped_in_the_frame_so_less_mouth_beside_a_pen_is_kept(face):
    """The masker with `refine` against the same without it, on the face at 2x (a 190 px face, like demo1's):
    the pen is kept whole as before, and a quarter less of the face beside it is kept unedited (the found edge no
    longer lies an analysis pixel out); a microphone's edge is kept whole where before its ramp lay over it."""
    import dataclasses

    frame, box, landmarks, mouth, width = face
    settings = load_faces_config().occlusion
    assert settings.refine > 0
    hull = face_hull(frame.shape, landmarks)
    results = {}
    for draw in (with_pen_below_the_lips, with_microphone):
        occluded, occluder = draw(frame, mouth, width)
        big = cv2.resize(occluded, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
        on_face, beside = (cv2.resize(m.astype(np.uint8), None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST) > 0
                           for m in (occluder & (hull > 0), ~occluder & (hull > 0)))
        for refine in (0, settings.refine):
            with OccluderMasker("auto", dataclasses.replace(settings, refine=refine)) as masker:
                mask = masker(big, box * 2, landmarks * 2)
            results[draw, refine] = (mask[on_face] >= 0.99).mean(), int((mask[beside] >= 0.9).sum())
    pen_before, pen_after = results[with_pen_below_the_lips, 0], results[with_pen_below_the_lips, settings.refine]
    assert pen_before[0] >= 0.99 and pen_after[0] >= 0.99
    assert pen_after[1] < 0.8 * pen_before[1]
    assert results[with_microphone, settings.refine][0] >= max(0.99, results[with_microphone, 0][0])


def test_a_thin_faint_piece_the_colour_cue_found_stays_found(monkeypatch):
    """In a dim shot the pen barely differs from the skin: the guided filter's fit is weak and its output tends to
    the window's share of found pixels, so a piece two analysis pixels wide would go. What was found stays found
    (less the outer quarter pixel of its edge)."""
    from latentsync.faces.occlusion import masker as masker_module

    settings = load_faces_config().occlusion
    rng = np.random.default_rng(0)
    crop = np.clip(rng.normal((60, 45, 40), 3, (150, 288, 3)), 0, 255).astype(np.uint8)  # dim skin, sensor noise
    crop[72:78, 30:250] = (52, 42, 44)  # a faint pen, 6 px (2 analysis pixels) wide
    roi = cv2.resize(crop, (96, 50), interpolation=cv2.INTER_AREA)
    found = np.zeros((50, 96), np.uint8)
    found[24:26, 10:83] = 255
    pen = np.zeros((150, 288), bool)
    pen[72:78, 40:240] = True

    def kept():
        return (masker_module._fine_mask(crop, roi, found, 68.0, settings)[pen] >= 0.99).mean()

    assert kept() == 1.0
    monkeypatch.setattr(masker_module, "FOUND_CORE", 1.0)  # the guided filter alone
    assert kept() < 0.5


def test_a_large_face_is_analysed_in_whole_blocks_and_its_occluder_found_alike(face):
    """A face four times the astronaut's size (a close-up at 1080p) is analysed in whole 5 x 5 pixel blocks
    (OpenCV's fast area resize) instead of at exactly `analysis_width`: the microphone is found as at 1x."""
    from latentsync.faces.occlusion.geometry import analysis_grid, region_around

    frame, box, landmarks, mouth, width = face
    occluded, occluder = with_microphone(frame, mouth, width)
    big = cv2.resize(occluded, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
    big_occluder = cv2.resize(occluder.astype(np.uint8), None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST) > 0
    settings = load_faces_config().occlusion
    region = region_around(box * 4, settings.roi_side, settings.roi_top, settings.roi_bottom, big.shape[:2])
    blocks, (h, w) = analysis_grid(region, settings.analysis_width)
    k = (blocks[2] - blocks[0]) // w
    assert k >= 4 and (blocks[2] - blocks[0], blocks[3] - blocks[1]) == (k * w, k * h)
    assert 0 <= region[2] - blocks[2] < k and 0 <= region[3] - blocks[3] < k
    with OccluderMasker("auto", settings) as masker:
        mask = masker(big, box * 4, landmarks * 4)
    on_face = big_occluder & (face_hull(big.shape, landmarks * 4) > 0)
    assert mask is not None and (mask[on_face] >= 0.99).mean() >= 0.9


@pytest.mark.parametrize("draw", [with_pen, with_microphone_on_the_mouth])
def test_objects_over_the_mouth_are_kept_once_the_shot_showed_it(face, draw):
    """After a few frames of the shot with nothing in front of the mouth, its lip and open-mouth colours are
    known: an object over the mouth is told from them (a fresh masker, or one reset at a cut, does not know them)."""
    frame, box, landmarks, mouth, width = face
    occluded, occluder = draw(frame, mouth, width)
    hull = face_hull(frame.shape, landmarks)
    on_face = occluder & (hull > 0)
    settings = load_faces_config().occlusion
    with OccluderMasker("auto", settings) as masker:
        for _ in range(settings.mouth_frames + 1):
            assert masker(frame, box, landmarks) is None
        mask = masker(occluded, box, landmarks)
        assert mask is not None and (mask[on_face] >= 0.99).mean() >= 0.9
        masker.reset()
        cold = masker(occluded, box, landmarks)
    if draw is with_microphone_on_the_mouth:  # without the shot's mouth colours the open mouth is left out
        assert cold is None or (cold[on_face] >= 0.99).mean() < 0.6


def test_a_microphone_over_the_lips_from_a_shots_first_frame_is_kept(face, monkeypatch):
    """Until the shot's mouth colours are learnt the lip ring has a per-frame colour model, taken from the ring
    itself. A microphone head over most of the ring (95 % here) made its colours the "lips'": its part over the
    lips was not found, was then learnt as the mouth's colours, and was edited over for the whole shot. A ring
    whose median is grey is not taken for lips (`_lips_seen`)."""
    from latentsync.faces.occlusion import colour as colour_module

    frame, box, landmarks, mouth, width = face
    occluded, microphone = draw_microphone(frame, (int(mouth[0]), int(mouth[1])), 0.23, width)
    on_face = microphone & (face_hull(frame.shape, landmarks) > 0)

    def kept_per_frame() -> list[float]:
        with OccluderMasker("auto") as masker:  # a fresh masker: the shot's first frames
            masks = [masker(occluded, box, landmarks) for _ in range(6)]  # past `mouth_frames`
        return [0.0 if m is None else float((m[on_face] >= 0.99).mean()) for m in masks]

    assert min(kept_per_frame()) >= 0.9
    monkeypatch.setattr(colour_module, "_lips_seen", lambda *args: True)  # the ring always taken for lips: before
    assert max(kept_per_frame()) <= 0.5


def test_what_comes_in_over_the_lips_is_not_learnt_as_the_mouth(face):
    """The shot's mouth colours are learnt where nothing covers the mouth. A dark object that reaches the lips
    from the cheek before it is found is not the mouth: its pixels over the lips, joined to it, are left out of
    the learning (`coming_in`), while the mouth's own dark inside in the same grey, joined to nothing outside the
    lips, and a speck across the lips' edge too small for an occluder are learnt."""
    from latentsync.faces.occlusion.colour import colour_candidates, coming_in, face_regions
    from latentsync.faces.occlusion.geometry import analysis_grid, region_around

    frame, box, landmarks, mouth, width = face
    settings = load_faces_config().occlusion
    region, (h, w) = analysis_grid(region_around(box, settings.roi_side, settings.roi_top, settings.roi_bottom,
                                         frame.shape[:2]), settings.analysis_width)
    x0, y0, x1, y1 = region
    scale = w / (x1 - x0)

    def to_roi(points):
        return (np.asarray(points, np.float64) - (x0, y0)) * scale

    roi = cv2.resize(frame[y0:y1, x0:x1], (w, h), interpolation=cv2.INTER_AREA)
    regions = face_regions(landmarks, to_roi, (h, w), width * scale, settings)
    mouth_area = (regions["lips"] > 0) | (regions["mouth"] > 0)

    def disk(point, radius):
        out = np.zeros((h, w), np.uint8)
        cv2.circle(out, tuple(int(round(v)) for v in to_roi(point)), max(1, int(round(radius * scale))), 1, -1)
        return out > 0

    grey = (50, 50, 52)
    incoming = disk(landmarks[61], 0.12 * width)  # over the left lip corner, out onto the cheek
    inside = disk((landmarks[13] + landmarks[14]) / 2, 0.03 * width) & mouth_area  # the mouth's dark inside
    beside = ~mouth_area[:, 1:] & mouth_area[:, :-1]  # a pixel whose left neighbour is the lips'
    ys, xs = np.nonzero(beside)
    y, x = ys[np.argmax(xs)], xs.max() + 1  # just beside the right lip corner
    speck = np.zeros((h, w), bool)
    speck[y - 1 : y + 2, x - 2 : x + 2] = True  # 3 x 4 analysis pixels across the lips' edge
    assert speck[y, x] and not mouth_area[y, x] and mouth_area[y, x - 1]
    for part in (incoming, inside, speck):
        roi[part] = grey
    came_in = coming_in(roi, regions, colour_candidates(roi, regions, settings), settings) > 0
    assert (incoming & mouth_area).sum() >= 10 and came_in[incoming & mouth_area].mean() >= 0.9
    assert inside.any() and not came_in[inside].any()
    assert not came_in[speck].any() and not (came_in & ~mouth_area).any()


def test_an_object_the_cue_misses_over_the_lips_for_a_while_is_not_learnt_as_the_mouth(face):
    """An object that covers the lips for a few frames before the colour cue finds it (over a background of its own
    colour, say; here the cue is made to miss it) does not become one of the shot's mouth colours: once found, it is
    kept over the mouth. Without `coming_in` the mouth model learns it, and most of it is then taken for the mouth."""
    from latentsync.faces.occlusion import masker as masker_module

    frame, box, landmarks, mouth, width = face
    occluded, occluder = with_microphone_on_the_mouth(frame, mouth, width)
    hull = face_hull(frame.shape, landmarks)
    on_face = occluder & (hull > 0)
    settings = load_faces_config().occlusion

    def nothing(roi, *args, **kwargs):
        return np.zeros(roi.shape[:2], np.uint8)

    def kept_once_found(keep_out_what_comes_in: bool) -> float:
        with OccluderMasker("auto", settings) as masker:
            for _ in range(settings.mouth_frames + 1):
                assert masker(frame, box, landmarks) is None
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(masker_module, "colour_occluders", nothing)  # the cue misses it for 4 frames
                if not keep_out_what_comes_in:
                    patch.setattr(masker_module, "coming_in", nothing)
                for _ in range(4):
                    assert masker(occluded, box, landmarks) is None
            mask = masker(occluded, box, landmarks)
        return 0.0 if mask is None else float((mask[on_face] >= 0.99).mean())

    assert kept_once_found(True) >= 0.9
    assert kept_once_found(False) < 0.5


def test_colour_cue_skips_frames_only_while_nothing_is_in_sight(face, monkeypatch):
    """Once the shot's mouth colours are learnt and nothing is found, the colour cue looks at every
    `colour_every`-th frame only; an object coming in is still found within that many frames, and from then on
    every frame is analysed."""
    from latentsync.faces.occlusion import masker as masker_module

    frame, box, landmarks, mouth, width = face
    occluded, _ = with_microphone(frame, mouth, width)
    settings = load_faces_config(overrides=["occlusion.colour_every=3"]).occlusion
    calls = []
    real = masker_module.colour_occluders
    monkeypatch.setattr(masker_module, "colour_occluders", lambda *a, **k: calls.append(1) or real(*a, **k))
    with OccluderMasker("auto", settings) as masker:
        for _ in range(settings.mouth_frames):  # learning the mouth: every frame
            assert masker(frame, box, landmarks) is None
        assert len(calls) == settings.mouth_frames
        for _ in range(6):
            masker(frame, box, landmarks)
        assert len(calls) == settings.mouth_frames + 2
        found = [masker(occluded, box, landmarks) is not None for _ in range(3)]
        assert any(found) and found[-1]
        before = len(calls)
        masker(occluded, box, landmarks)
        assert len(calls) == before + 1


def test_a_frame_the_colour_cue_skipped_is_searched_once_the_next_finds_an_object(face):
    """While nothing is in sight the colour cue skips frames (`colour_every` 2); an object that arrives on a skipped
    frame is found in the next and followed back over the skipped one (`look_back`): that frame keeps it as if it
    had been analysed itself."""
    frame, box, landmarks, mouth, width = face
    occluded, occluder = with_microphone(frame, mouth, width)
    hull = face_hull(frame.shape, landmarks)
    on_face = occluder & (hull > 0)

    def first_occluded_frame_kept(colour_every: int, look_back: int) -> float:
        settings = load_faces_config(overrides=[f"occlusion.colour_every={colour_every}",
                                                f"occlusion.look_back={look_back}"]).occlusion
        clean = settings.mouth_frames | 1  # the mouth is learnt on every frame, then frames 0, 2, ... are analysed
        masks = []
        with OccluderMasker("auto", settings) as masker:
            for image in [frame] * clean + [occluded] * 2:  # the object arrives on a frame that every 2 skips
                masks.append(masker.patch(image, box, landmarks))
                for back, grown in masker.revisions():
                    masks[-1 - back] = grown
        assert all(mask is None for mask in masks[:clean]) and masks[-1] is not None
        first = masks[clean]
        return 0.0 if first is None else float((first.full(frame.shape[:2])[on_face] >= 0.99).mean())

    assert first_occluded_frame_kept(2, 0) == 0.0  # skipped, and nothing looks back
    analysed = first_occluded_frame_kept(1, 4)
    assert analysed >= 0.9 and first_occluded_frame_kept(2, 4) >= analysed - 0.02


def test_off_mode_finds_nothing(face):
    frame, box, landmarks, mouth, width = face
    occluded, _ = with_microphone(frame, mouth, width)
    with OccluderMasker("off") as masker:
        assert masker(occluded, box, landmarks) is None


def test_a_frame_that_finds_part_of_the_occluder_keeps_it_whole(face):
    """A detection dropout (a frame that finds under `hold` of the last frame's occluder) keeps the last frame's
    detection at full strength: without it the decay leaves 0.6, and 40 % of the edit flashes through the
    occluder for a frame (the bench's cup composites lost 35-46 % of the cup in such single frames)."""
    frame, box, landmarks, mouth, width = face
    occluded, occluder = with_microphone(frame, mouth, width)
    dropout = occluded.copy()
    top = int(mouth[1] + 0.3 * width)  # the microphone head's centre row: the frame misses its upper half
    dropout[:top][occluder[:top]] = frame[:top][occluder[:top]]
    hull = face_hull(frame.shape, landmarks)
    upper_on_face = occluder & (hull > 0)
    upper_on_face[top:] = False
    kept = {}
    for hold in (settings_hold := load_faces_config().occlusion.hold, 0.0):
        settings = load_faces_config(overrides=[f"occlusion.hold={hold}"]).occlusion
        with OccluderMasker("auto", settings) as masker:
            masker.patch(occluded, box, landmarks)
            mask = masker(dropout, box, landmarks)
        kept[hold] = float((mask[upper_on_face] >= 0.99).mean())
    assert settings_hold > 0 and upper_on_face.sum() > 50 and kept[settings_hold] >= 0.95 and kept[0.0] < 0.5


def test_mask_is_steady_is_held_a_frame_then_fades_and_reset_forgets(face):
    frame, box, landmarks, mouth, width = face
    occluded, _ = with_microphone(frame, mouth, width)
    settings = load_faces_config().occlusion
    with OccluderMasker("auto", settings) as masker:
        first = masker.patch(occluded, box, landmarks)
        second = masker.patch(occluded, box, landmarks)
        assert first is not None and second is not None
        assert np.allclose(second.full(frame.shape[:2]), first.full(frame.shape[:2]), atol=1e-6)  # same frame
        held = masker.patch(frame, box, landmarks)  # the occluder left (or one frame missed it): held whole ...
        assert held is not None and np.allclose(held.full(frame.shape[:2]), first.full(frame.shape[:2]), atol=1e-6)
        faded = masker.patch(frame, box, landmarks)  # ... then it fades, no pop
        assert faded is not None
        assert faded.mask.max() == pytest.approx(settings.decay, abs=1e-5)
        values = [faded.mask.max()]
        for _ in range(20):
            patch = masker.patch(frame, box, landmarks)
            if patch is None:
                break
            values.append(patch.mask.max())
        assert patch is None and np.all(np.diff(values) < 0)
        masker.patch(occluded, box, landmarks)
        masker.reset()
        assert masker.patch(frame, box, landmarks) is None  # after a cut nothing carries over


def test_an_object_found_at_the_chin_is_followed_back_to_where_it_came_in(face):
    """A microphone that comes in from beside the jaw, where alone it is not taken for an occluder, is followed
    back once it is found at the chin: the masks of up to `look_back` earlier frames grow (`revisions`, applied as
    the face pass applies them), never across a reset."""
    frame, box, landmarks, mouth, width = face
    settings = load_faces_config().occlusion
    steps = 12
    path = [(int(mouth[0] + (-0.6 + 0.7 * t / steps) * width), int(mouth[1] + (0.2 + 0.1 * t / steps) * width))
            for t in range(steps + 1)]  # from beside the jaw to below the lips

    def masks_along(look_back: int, reset_before: int | None = None) -> list:
        masks = []
        with OccluderMasker("auto", dataclasses.replace(settings, look_back=look_back)) as masker:
            for k, centre in enumerate(path):
                if k == reset_before:
                    masker.reset()
                masks.append(masker.patch(draw_microphone(frame, centre, 0.15, width)[0], box, landmarks))
                for back, grown in masker.revisions():
                    assert 1 <= back <= look_back
                    masks[-1 - back] = grown
        return masks

    def head_kept(patch, centre) -> float:
        head = np.zeros(frame.shape[:2], np.uint8)
        cv2.circle(head, centre, int(0.15 * width), 1, -1)
        return 0.0 if patch is None else float((patch.full(frame.shape[:2])[head > 0] >= 0.99).mean())

    alone = masks_along(0)
    first = next(k for k, patch in enumerate(alone) if patch is not None)  # found at the chin only
    followed = masks_along(settings.look_back)
    back = range(max(0, first - settings.look_back), first)
    assert settings.look_back >= 2 and first >= settings.look_back
    assert all(head_kept(followed[k], path[k]) >= 0.95 for k in back), [head_kept(followed[k], path[k]) for k in back]
    assert all(followed[k] is None for k in range(back.start))  # no further back than `look_back`
    after_cut = masks_along(settings.look_back, reset_before=first - 1)
    assert after_cut[first - 1] is not None and all(after_cut[k] is None for k in range(first - 1))


def test_an_object_that_slides_off_the_lower_face_is_followed_for_a_while(face):
    """A microphone kept at the chin for `carry_after` frames that slides beside the jaw, off the lower face, stays
    found there (`carry_frames`), where alone it is not an occluder; one seen only briefly at the chin is not
    followed (a false find is brief), and nothing is followed for ever."""
    frame, box, landmarks, mouth, width = face
    settings = load_faces_config().occlusion
    steps = 6
    slide = [(int(mouth[0] + (0.1 - 0.6 * t / steps) * width), int(mouth[1] + (0.3 - 0.1 * t / steps) * width))
             for t in range(steps + 1)]  # from below the lips to beside the jaw
    head = np.zeros(frame.shape[:2], np.uint8)
    cv2.circle(head, slide[-1], int(0.15 * width), 1, -1)
    beside_the_jaw = draw_microphone(frame, slide[-1], 0.15, width)[0]

    def kept_beside_the_jaw(frames_at_the_chin: int, carry_frames: int) -> tuple[float, OccluderMasker]:
        masker = OccluderMasker("auto", dataclasses.replace(settings, carry_frames=carry_frames))
        for centre in [slide[0]] * frames_at_the_chin + slide[1:]:
            mask = masker(draw_microphone(frame, centre, 0.15, width)[0], box, landmarks)
        return (0.0 if mask is None else float((mask[head > 0] >= 0.99).mean())), masker

    followed, masker = kept_beside_the_jaw(settings.carry_after, settings.carry_frames)
    assert settings.carry_frames > 0 and followed >= 0.95
    for frames_at_the_chin, carry_frames in ((settings.carry_after, 0), (2, settings.carry_frames)):
        lost, other = kept_beside_the_jaw(frames_at_the_chin, carry_frames)
        other.close()
        assert lost < 0.05
    with OccluderMasker("auto", settings) as fresh:
        assert fresh(beside_the_jaw, box, landmarks) is None
    whole = [masker.patch(beside_the_jaw, box, landmarks) for _ in range(settings.carry_frames + 20)]
    masker.close()
    assert whole[-1] is None  # carried at most `carry_frames` frames off the lower face, then faded
    assert sum(p is not None and p.mask.max() >= 0.99 for p in whole) <= settings.carry_frames


def test_an_object_is_followed_where_it_stayed_in_the_frame_and_where_it_moved_with_the_face():
    """The carry and the look back look for the last frame's object at the same place in the frame (a microphone
    on a stand) and where the face took it (one the speaker holds): a thin pen held to a turning head was lost
    when only the first was tried (lp_d12 in the bench)."""
    from latentsync.faces.occlusion.masker import _Sighting, _where_it_may_be

    settings = load_faces_config().occlusion
    points = np.array([[130.0, 120.0], [170.0, 160.0]])  # two landmarks stand for the face

    def sighting(dx: float) -> _Sighting:  # a 96 px grid on a 96 px region that follows the face
        region = (int(100 + dx), 100, int(196 + dx), 196)
        face = points + [dx, 0.0]
        return _Sighting(region, (96, 96), np.zeros((300, 300, 3), np.uint8), lambda p: p,
                         np.concatenate([face.min(axis=0), face.max(axis=0)]), face, 50.0, settings)

    before, now = sighting(0.0), sighting(12.0)
    found = np.zeros((96, 96), np.uint8)
    found[40:44, 30:60] = 255  # a thin horizontal pen
    where = _where_it_may_be(found, before, now) > 0
    assert where[40:44, 18:48].all()  # where it was in the frame (the grid moved 12 px with the face)
    assert where[40:44, 30:60].all()  # where the face took it
    assert not where[:38].any() and not where[46:].any()


def test_keep_occluders_patch_equals_full_mask():
    rng = np.random.default_rng(1)
    original = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    restored = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    patch = OcclusionPatch((10, 5, 30, 25), rng.random((20, 20)).astype(np.float32))
    via_patch = keep_occluders(original, restored, patch)
    via_full = keep_occluders(original, restored, patch.full((40, 60)))
    assert np.array_equal(via_patch, via_full)
    assert np.array_equal(via_patch[:5], restored[:5])
    assert keep_occluders(original, restored, None) is restored


def synthetic_hand(wrist, palm_length: float) -> np.ndarray:
    """21 MediaPipe hand points, fingers up: the wrist (0), then thumb, index, middle, ring and little finger,
    base to tip; the middle finger's base (9) lies `palm_length` from the wrist."""
    wrist = np.asarray(wrist, np.float64)
    points = [wrist]
    for angle in np.radians([-60, -30, -10, 10, 30]):  # thumb, index, middle, ring, little
        direction = np.array([np.sin(angle), -np.cos(angle)])
        base = wrist + direction * palm_length * (0.5 if angle == np.radians(-60) else 1.0)
        points += [base + direction * palm_length * 0.3 * k for k in range(4)]
    return np.array(points)


def test_drawn_hand_covers_palm_and_fingers():
    points = synthetic_hand((100.0, 180.0), 60.0)
    mask = np.zeros((260, 220), np.uint8)
    draw_hand(mask, points, finger_width=0.3, dilate=0.08)
    for p in points:
        assert mask[int(round(p[1])), int(round(p[0]))] == 255
    assert mask[5, 5] == 0


def test_a_hand_the_palm_detector_finds_on_the_face_itself_is_dropped(face):
    """The palm detector fires on faces: a small "hand" whose wrist lies on the face's edge is the face itself;
    a hand of a real hand's size there, or a smaller one reaching up over the face from below the chin, is a hand."""
    _, box, landmarks, mouth, width = face
    settings = load_faces_config().occlusion
    chin = np.array([mouth[0], landmarks[:, 1].max()])
    assert not not_the_face(synthetic_hand(chin, 0.3 * width), landmarks, width, settings)
    assert not_the_face(synthetic_hand(chin, 0.7 * width), landmarks, width, settings)
    assert not_the_face(synthetic_hand(chin + (0, 0.35 * width), 0.45 * width), landmarks, width, settings)


def test_a_hand_counts_only_with_its_fingers_over_the_face(face):
    """vr_face3's neck and collarbone under a pen read as a hand of a real hand's size (palm 0.64-0.77 W), its
    wrist just below the chin (0.19-0.31 W) and its fingers along the collarbone, 0-3 of its points on the face:
    kept, it covered her whole chin for 16 frames. The same hand with its fingers up over the mouth is a hand."""
    _, box, landmarks, mouth, width = face
    settings = load_faces_config().occlusion
    wrist = np.array([mouth[0], landmarks[:, 1].max() + 0.2 * width])  # within hand_wrist_band below the chin
    up = synthetic_hand(wrist, 0.7 * width)
    down = 2 * wrist - up  # the same hand turned 180 degrees about its wrist: fingers down the neck
    assert not_the_face(up, landmarks, width, settings)
    assert not not_the_face(down, landmarks, width, settings)
    anywhere = dataclasses.replace(settings, hand_min_on_face=0)
    assert not_the_face(down, landmarks, width, anywhere)
    assert not not_the_face(down + (0, 0.5 * width), landmarks, width, settings)  # further below: not over the face


def test_a_hand_beside_the_mouth_counts_but_not_one_below_the_chin(face):
    """A real hand held beside the mouth (a photographed hand moved across corpus faces: docs/faces.md
    "Occlusion") lays its fingers beside the cheek, over the edited region's side but outside the landmark hull:
    2-5 of its points inside it, and it was dropped. Points beside the outline within `hand_face_reach` count, as
    long as they lie no lower than the chin; the same hand below the chin, beside the neck, still does not count."""
    _, box, landmarks, mouth, width = face
    settings = load_faces_config().occlusion
    outline = cv2.convexHull(landmarks.astype(np.float32))
    row = [p for p in landmarks if abs(p[1] - mouth[1]) < 0.05 * width]
    cheek = max(p[0] for p in row)  # the outline's right edge at mouth height
    beside = synthetic_hand((cheek + 0.25 * width, mouth[1] + 0.6 * width), 0.45 * width)
    inside = sum(cv2.pointPolygonTest(outline, (float(x), float(y)), False) >= 0 for x, y in beside)
    assert inside < settings.hand_min_on_face
    assert settings.hand_face_reach > 0 and not_the_face(beside, landmarks, width, settings)
    assert not not_the_face(beside, landmarks, width, dataclasses.replace(settings, hand_face_reach=0.0))
    below = beside + (0, landmarks[:, 1].max() - beside[:, 1].min() + 1)  # fingertips just under the chin
    assert not not_the_face(below, landmarks, width, settings)


def test_a_finger_raised_to_the_lips_from_below_the_chin_counts(face):
    """A fist under the chin with the index finger up to the lips (a held-out photo, OneHand10K 33) has 2-4 of its
    points above the chin and was dropped as a neck would be. A fingertip within `hand_tip_reach` of the outer lips
    makes it a hand in front of the face; the same hand lowered until its fingertip is well off the lips does not
    count, and neither does it without the rule."""
    from latentsync.faces.occlusion.hands import over_the_face

    _, box, landmarks, mouth, width = face
    settings = load_faces_config().occlusion
    chin = float(landmarks[:, 1].max())
    fist = np.array([mouth[0] + 0.05 * width, chin + 0.25 * width])
    hand = np.repeat(fist[None], 21, axis=0) + np.random.default_rng(0).normal(0, 0.03 * width, (21, 2))
    hand[0] = fist + (0, 0.2 * width)  # the wrist below the fist
    hand[5:9] = np.linspace(fist, mouth + (0, 0.02 * width), 4)  # the index finger, its tip on the lower lip
    above = sum(y <= chin for _, y in hand)
    assert 1 <= above < settings.hand_min_on_face
    assert over_the_face(hand, landmarks, width, settings) and not_the_face(hand, landmarks, width, settings)
    assert not over_the_face(hand, landmarks, width, dataclasses.replace(settings, hand_tip_reach=-1.0))
    lowered = hand + (0, 0.3 * width)  # the fingertip by the chin, ~0.2 W below the lips
    assert not over_the_face(lowered, landmarks, width, settings)


@pytest.mark.parametrize("clip, frames, rule_off", [("lp_d12", 30, "occlusion.hand_min_palm=0"),
                                                     ("vr_face3", 50, "occlusion.hand_min_on_face=0")])
def test_no_hand_is_found_on_a_face_without_one(clip, frames, rule_off):
    """lp_d12's first 30 frames: no hand near the face, but the palm detector reads the jaw and lips as a hand on
    9 of them (frames 6-14): with the face's own outline (`hand_min_palm`, `hand_wrist_band`) nothing is masked.
    vr_face3's first 50: her collar reads as a small hand below the chin from frame 18 on, a few frames of it over
    the edited region: with `hand_min_on_face` (no finger over the face) nothing is masked."""
    from latentsync.faces.video import VideoFaceProcessor
    from latentsync.utils.media import iter_frames

    path = SHARED / "media" / "corpus" / f"{clip}.mp4"
    if not path.is_file():
        pytest.skip(f"corpus clip not available: {path}")
    processor = VideoFaceProcessor(resolution=256)
    try:
        chunk = next(iter(iter_frames(path, chunk_size=frames)))
        aligned = [a for a in processor.process(iter(chunk)) if a.has_face]
    finally:
        processor.close()
    masked = {}
    for rule in ("on", "off"):
        settings = load_faces_config(overrides=[] if rule == "on" else [rule_off]).occlusion
        with OccluderMasker("hands", settings) as masker:
            masked[rule] = sum(masker.patch(a.frame, a.face_box, a.landmarks) is not None for a in aligned)
    assert len(aligned) == frames and masked["off"] >= 5 and masked["on"] == 0, masked


class ScriptedHands:
    """Stands in for MediaPipe Hands in video mode, for one synthetic hand: the palm detector fires only on frames
    marked "palm" (a hand is often not found on its own), tracking keeps a hand found in the call before on any
    frame marked "hand". The mark is the value of the model input's top-left pixel: 2 palm, 1 hand, 0 none.
    `points`: the hand's 21 points as shares of the input's width and height."""

    def __init__(self, points: np.ndarray, calls: list):
        self.points, self.calls, self.tracking = points, calls, False

    def process(self, crop):
        from types import SimpleNamespace

        mark = int(crop[0, 0, 0])
        self.calls.append(mark)
        self.tracking = mark == 2 or (mark == 1 and self.tracking)
        if not self.tracking:
            return SimpleNamespace(multi_hand_landmarks=None)
        landmark = [SimpleNamespace(x=x, y=y) for x, y in self.points]
        return SimpleNamespace(multi_hand_landmarks=[SimpleNamespace(landmark=landmark)])

    def reset(self):
        self.tracking = False

    def close(self):
        pass


def test_a_hand_found_late_is_followed_back_over_the_frames_the_palm_detector_skipped(face, monkeypatch):
    """The palm detector runs on every `hand_every`-th frame only. A hand in sight from frame 3 whose palm is found
    at frame 6 (the next run) is tracked back, by a second model fed the frames backwards, over frames 5, 4 and 3
    (`revisions`), up to `look_back` frames; frame 2, without it, stays unmasked. Without the look back frames 3-5
    are edited over the hand."""
    from latentsync.faces.occlusion.hands import HandFinder

    frame, box, landmarks, mouth, width = face
    # A hand of a real hand's size reaching up over the mouth, as shares of the hand model's search region.
    settings = load_faces_config(overrides=["occlusion.hand_every=6", "occlusion.look_back=4"]).occlusion
    x0, y0, x1, y1 = _hand_region(box, frame.shape, settings)
    hand = (synthetic_hand((mouth[0], mouth[1] + 0.6 * width), 0.7 * width) - (x0, y0)) / (x1 - x0, y1 - y0)
    marks = [0, 0, 0, 1, 1, 1, 2, 1, 1, 1]  # in sight from frame 3, its palm found from frame 6 on
    frames = []
    for mark in marks:
        f = frame.copy()
        f[y0 : y0 + 8, x0 : x0 + 8] = mark  # whole blocks of the model input's downscale
        frames.append(f)

    def run(look_back: int) -> tuple[list, list]:
        calls: list[int] = []
        monkeypatch.setattr(HandFinder, "_model", lambda self: ScriptedHands(hand, calls))
        masks: list = [None] * len(frames)
        with OccluderMasker("hands", dataclasses.replace(settings, look_back=look_back)) as masker:
            for k, f in enumerate(frames):
                masks[k] = masker.patch(f, box, landmarks)
                for back, grown in masker.revisions():
                    masks[k - back] = grown
        return [m is not None and float(m.full(frame.shape[:2])[int(mouth[1]), int(mouth[0])]) >= 0.99
                for m in masks], calls

    covered, calls = run(4)
    assert covered == [False, False, False, True, True, True, True, True, True, True]
    # The forward model ran on frame 0 and on frame 6 (then on every frame: it tracks); the backward one on frame
    # 6, then 5, 4, 3 and 2, where it lost the hand.
    assert calls[:2] == [0, 2] and calls[2:7] == [2, 1, 1, 1, 0]
    covered, _ = run(0)
    assert covered == [False] * 6 + [True] * 4


def cheek_colour(frame, landmarks) -> np.ndarray:
    """The median RGB of a small patch of the cheek beside the nose (face mesh point 50)."""
    x, y = (int(v) for v in landmarks[50][:2])
    return np.median(frame[y - 3 : y + 3, x - 3 : x + 3].reshape(-1, 3), axis=0)


def painted_hand(frame, hand, colour, settings) -> np.ndarray:
    """The frame with `hand` (21 points) drawn as the masker draws it and filled with one skin `colour`."""
    drawn = np.zeros(frame.shape[:2], np.uint8)
    draw_hand(drawn, hand, settings.finger_width, settings.hand_dilate)
    out = frame.copy()
    out[drawn > 0] = np.clip(colour, 0, 255).astype(np.uint8)
    return out


def test_a_small_hand_on_the_face_counts_when_the_lips_no_longer_show_under_it(face, monkeypatch):
    """The palm detector's false hands on faces and real hands held to the face measure alike (palm 0.24-0.48 W
    against 0.39-0.47 W, the wrist on the face's edge), but the lips under a false hand still show. The same small
    hand over the mouth (scripted in place of MediaPipe): on the astronaut as photographed it is her own face and is
    dropped; with skin-coloured pixels over it (the lips hidden) it is a hand and masked, once her lips were seen
    with no hand over them (frame 0). Before her lips were seen (a hand there from the shot's first frame, or the
    model's "hand" over them in that frame: the lips are learnt only where none is) a hand as green as her cheeks
    is undecided and dropped, and one greener than her cheeks by `lips_unseen_min` (as real hands over lips were;
    a face's own lips never were) is masked."""
    from latentsync.faces.occlusion.hands import HandFinder, LipsAndCheeks

    frame, box, landmarks, mouth, width = face
    settings = load_faces_config(overrides=["occlusion.hand_every=1"]).occlusion
    lips, cheeks = LipsAndCheeks(frame, landmarks, width, settings).green()
    own = lips - cheeks
    assert own < -settings.lips_min_contrast  # her lips are redder than her cheeks
    hand = synthetic_hand((mouth[0], landmarks[:, 1].max()), 0.35 * width)  # wrist at the chin, fingers up
    assert not not_the_face(hand, landmarks, width, settings)  # too small a palm for a hand on the face's edge
    cheek = cheek_colour(frame, landmarks)
    covered = painted_hand(frame, hand, cheek, settings)
    for shown, hidden in ((frame, False), (covered, True)):
        ring, free = LipsAndCheeks(shown, landmarks, width, settings).green(hand)
        assert ((ring - (cheeks if free is None else free)) > settings.lips_hidden_share * own) == hidden

    x0, y0, x1, y1 = _hand_region(box, frame.shape, settings)

    def masked(frames, marks, points=hand) -> list[bool]:
        out = []
        for f, mark in zip(frames, marks, strict=True):
            f = f.copy()
            f[y0 : y0 + 8, x0 : x0 + 8] = mark  # 2: the scripted palm detector fires, 0: no hand
            out.append(f)
        shares = (points - (x0, y0)) / (x1 - x0, y1 - y0)
        monkeypatch.setattr(HandFinder, "_model", lambda self: ScriptedHands(shares, []))
        with OccluderMasker("hands", settings) as masker:
            return [masker.patch(f, box, landmarks) is not None for f in out]

    assert masked([frame, frame], [0, 2]) == [False, False]  # her own face, lips showing
    assert masked([frame, covered], [0, 2]) == [False, True]  # a hand over her lips, seen once without it
    assert masked([covered, covered], [2, 2]) == [False, False]  # from the first frame, over her cheeks too
    assert masked([frame, covered], [2, 2]) == [False, False]  # a "hand" over them in frame 0: lips not learnt
    small = synthetic_hand((mouth[0], landmarks[:, 1].max()), 0.3 * width)  # leaves cheeks free to compare with
    greener = painted_hand(frame, small, cheek + (-12, 12, 0), settings)  # g / (r + g + b) up ~0.02
    ring, free = LipsAndCheeks(greener, landmarks, width, settings).green(small)
    assert ring - free > settings.lips_unseen_min
    assert masked([greener, greener], [2, 2], small) == [True, True]
    as_cheeks = painted_hand(frame, small, cheek, settings)
    assert masked([as_cheeks, as_cheeks], [2, 2], small) == [False, False]


def test_a_hand_seen_before_it_counts_is_watched_on_every_frame_and_followed_back(face, monkeypatch):
    """The palm detector runs on every `hand_every`-th frame only while no hand is in sight. A hand it finds over
    the face that does not count yet (frames 6-7: the lips still show under it) is watched on every frame, not
    left for the next run: it counts at frame 8, where it hides the lips, and is followed back over 7 and 6, where
    it was seen but not counted (`unsearched`). Before, the model ran next at frame 12."""
    from latentsync.faces.occlusion.hands import HandFinder

    frame, box, landmarks, mouth, width = face
    settings = load_faces_config(overrides=["occlusion.hand_every=6", "occlusion.look_back=4"]).occlusion
    hand = synthetic_hand((mouth[0], landmarks[:, 1].max()), 0.35 * width)  # wrist at the chin, fingers up
    cheek = cheek_colour(frame, landmarks)
    covered = painted_hand(frame, hand, cheek, settings)
    x0, y0, x1, y1 = _hand_region(box, frame.shape, settings)
    marks = [0, 0, 0, 0, 0, 0, 2, 1, 2]  # the palm found at 6 and 8, tracked at 7
    frames = []
    for k, mark in enumerate(marks):
        f = (covered if k == 8 else frame).copy()
        f[y0 : y0 + 8, x0 : x0 + 8] = mark
        frames.append(f)
    calls: list = []
    monkeypatch.setattr(HandFinder, "_model", lambda self: ScriptedHands((hand - (x0, y0)) / (x1 - x0, y1 - y0), calls))
    masks: list = [None] * len(frames)
    with OccluderMasker("hands", settings) as masker:
        for k, f in enumerate(frames):
            masks[k] = masker.patch(f, box, landmarks)
            for back, grown in masker.revisions():
                masks[k - back] = grown
    assert [m is not None for m in masks] == [False] * 6 + [True] * 3
    # Forward: frame 0, then 6, 7 and 8 (watched); backward from 8: 7 and 6 show the hand, 5 does not.
    assert calls == [0, 2, 1, 2] + [2, 1, 2, 0]


def test_a_bridged_frame_is_searched_with_the_last_landmarks(face, monkeypatch):
    """A hand over the face can make the face mesh give up for a few frames; the face pass bridges them (a face
    box, no landmarks) and edits them. The masker searches them with the last frame's landmarks, so the hand the
    model still tracks there stays masked whole, not held one frame and then faded (0.6, 0.36) and painted over."""
    from latentsync.faces.occlusion.hands import HandFinder

    frame, box, landmarks, mouth, width = face
    settings = load_faces_config(overrides=["occlusion.hand_every=1"]).occlusion
    hand = synthetic_hand((mouth[0], landmarks[:, 1].max() + 0.3 * width), 0.6 * width)  # a large hand, from below
    assert not_the_face(hand, landmarks, width, settings)
    x0, y0, x1, y1 = _hand_region(box, frame.shape, settings)
    monkeypatch.setattr(HandFinder, "_model", lambda self: ScriptedHands((hand - (x0, y0)) / (x1 - x0, y1 - y0), []))
    frames = []
    for mark in (2, 1, 1, 1):
        f = frame.copy()
        f[y0 : y0 + 8, x0 : x0 + 8] = mark
        frames.append(f)
    at = (int(hand[9][1]), int(hand[9][0]))  # the middle finger's base
    with OccluderMasker("hands", settings) as masker:
        values = [float(masker.patch(f, box, lm).full(frame.shape[:2])[at])
                  for f, lm in zip(frames, (landmarks, landmarks, None, None), strict=True)]
    assert min(values) > 0.99, values


def test_only_the_hand_that_counted_goes_on_without_the_lips_test():
    """A counted hand the model tracks on as it slides off the lips, or refits, needs no new proof; a second "hand"
    elsewhere in the same frame (the palm detector firing on the face beside a real hand) is not that hand."""
    from latentsync.faces.occlusion.hands import follows

    hand = synthetic_hand((100.0, 200.0), 60.0)
    assert follows(hand + (8.0, -5.0), [hand])  # moved on by a fraction of its palm
    centre, turn = hand.mean(axis=0), np.radians(45)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    refit = centre + (hand - centre) @ rotation.T  # the model refits its pose: the points move, the centre stays
    assert np.linalg.norm(refit - hand, axis=1).mean() > 0.5 * 60.0 and follows(refit, [hand])
    assert not follows(hand + (60.0, 0.0), [hand])  # a palm away: another hand
    assert not follows(hand, [])


def _hand_region(box, shape, settings) -> tuple[int, int, int, int]:
    from latentsync.faces.occlusion.geometry import region_around

    return region_around(box, settings.hand_side, 0.0, settings.hand_below, shape[:2])


@pytest.mark.skipif(not (SHARED / "media" / "corpus" / "vr_face3.mp4").is_file(),
                    reason="corpus clip not available: ../shared/media/corpus/vr_face3.mp4")
def test_a_hand_the_palm_detector_finds_late_on_real_footage_is_followed_back():
    """vr_face3's collar, read as a hand with the fingers-on-the-face rule off (`hand_min_on_face=0`): with the palm
    detector on every frame it is found at frame 13 and tracked on; on every 6th frame, at 18 only. The look back
    tracks it back to 14 (it came in right after a run): at most one frame is missed, against five before."""
    from latentsync.faces.video import VideoFaceProcessor
    from latentsync.utils.media import iter_frames

    processor = VideoFaceProcessor(resolution=256)
    try:
        chunk = next(iter(iter_frames(SHARED / "media" / "corpus" / "vr_face3.mp4", chunk_size=30)))
        aligned = list(processor.process(iter(chunk)))
    finally:
        processor.close()
    assert all(a.has_face for a in aligned)

    def first_masked(every: int, look_back: int) -> int:
        overrides = ["occlusion.hand_min_on_face=0", f"occlusion.hand_every={every}", f"occlusion.look_back={look_back}"]
        masked = [False] * len(aligned)
        with OccluderMasker("hands", load_faces_config(overrides=overrides).occlusion) as masker:
            for k, a in enumerate(aligned):
                masked[k] = masker.patch(a.frame, a.face_box, a.landmarks) is not None
                for back, grown in masker.revisions():
                    masked[k - back] = grown is not None
        return masked.index(True)

    every_frame, sparse, looked_back = first_masked(1, 0), first_masked(6, 0), first_masked(6, 4)
    # Here: 13, 18 (the palm detector's next run), 14. Tracked back up to `look_back` frames, never later than that:
    assert looked_back <= max(every_frame, sparse - 4)


def test_edited_region_lies_over_the_mouth(face):
    from latentsync.faces.settings import load_faces_config
    from latentsync.faces.video import VideoFaceProcessor
    from latentsync.pipelines.conditioning import fixed_mask_rgb_u8

    frame, _, landmarks, mouth, _ = face
    processor = VideoFaceProcessor(resolution=256)
    try:
        aligned = next(iter(processor.process(iter([frame]))))
        region = edited_region(frame.shape[:2], aligned.affine_matrix.numpy(), processor.restorer.face_size,
                               fixed_mask_rgb_u8(256, load_faces_config().fixed_mask)[..., 0])
    finally:
        processor.close()
    assert region[int(mouth[1]), int(mouth[0])]
    eyes = landmarks[[33, 263]].astype(int)
    assert not region[eyes[:, 1], eyes[:, 0]].any()


CLEAN_CLIPS = ("vr_face3", "vr_face5", "lp_d20", "st_WDA_KatieHill")


@pytest.mark.parametrize("name", CLEAN_CLIPS)
def test_corpus_clips_without_occluder_stay_edited(name):
    """Real talking faces (open mouths, glasses, lipstick, dark nostrils, a shiny cheek under a hard light from
    st_WDA_KatieHill's frame 33 on): over 60 frames the mask covers < 2% of the edited region."""
    from latentsync.faces.settings import load_faces_config
    from latentsync.faces.video import VideoFaceProcessor
    from latentsync.pipelines.conditioning import fixed_mask_rgb_u8
    from latentsync.utils.media import iter_frames

    path = SHARED / "media" / "corpus" / f"{name}.mp4"
    if not path.is_file():
        pytest.skip(f"corpus clip not available: {path}")
    frames = np.concatenate(list(islice(iter_frames(path, chunk_size=20), 3)))
    processor = VideoFaceProcessor(resolution=256)
    fixed = fixed_mask_rgb_u8(256, load_faces_config().fixed_mask)[..., 0]
    covered, total = 0.0, 0
    try:
        with OccluderMasker("auto") as masker:
            for aligned in processor.process(iter(frames)):
                if not aligned.has_face or aligned.landmarks is None:
                    continue
                region = edited_region(frames.shape[1:3], aligned.affine_matrix.numpy(),
                                       processor.restorer.face_size, fixed)
                mask = masker(aligned.frame, aligned.face_box, aligned.landmarks)
                covered += 0.0 if mask is None else float(mask[region].sum())
                total += int(region.sum())
    finally:
        processor.close()
    assert total > 0 and covered / total < 0.02


def test_the_face_pass_finds_in_its_masker_thread_what_the_masker_finds_frame_by_frame(tmp_path):
    """`ChunkSource` searches occluders in a thread of its own beside the face pass: on real footage (lp_d12,
    with a microphone drawn in frames 12-27, coming in from beside the jaw to the chin, so masks start, are
    followed back across the first chunk's end, hold and fade out) the track gets the masks the masker gives when
    called on each aligned frame in order, grown by its `revisions`."""
    from latentsync.faces.face_pass import ChunkSource
    from latentsync.faces.video import VideoFaceProcessor
    from latentsync.utils.media import VideoWriter, iter_frames

    source_path = SHARED / "media" / "corpus" / "lp_d12.mp4"
    if not source_path.is_file():
        pytest.skip(f"corpus clip not available: {source_path}")
    count = 32
    frames = list(next(iter(iter_frames(source_path, chunk_size=count))))
    with FaceDetector(backend="mediapipe") as detector:
        for k in range(12, 28):
            landmarks = detector.detect(frames[k]).landmarks
            width = float(np.ptp(landmarks[:, 0]))
            mouth, t = landmarks[[13, 14, 78, 308]].mean(axis=0), min(1.0, (k - 12) / 8)
            centre = (int(mouth[0] + (-0.6 + 0.7 * t) * width), int(mouth[1] + (0.2 + 0.1 * t) * width))
            frames[k] = draw_microphone(frames[k], centre, 0.15, width)[0]
    path = tmp_path / "lp_d12_with_microphone.mp4"
    with VideoWriter(path, 25.0) as writer:
        writer.write(np.stack(frames))
    source = ChunkSource(str(path), np.arange(count), 16, 256, 25, progress=False, occlusion="auto")
    in_track_when_handed_out = set()
    for chunk in source:
        chunk.wait_for_occluders()
        in_track_when_handed_out |= {int(i) for i in chunk.source_indices if int(i) in source.track.occluders}
    frames = next(iter(iter_frames(path, chunk_size=count)))
    processor = VideoFaceProcessor(resolution=256)
    expected, revised = {}, set()
    try:
        with OccluderMasker("auto") as masker:
            for aligned in processor.process(iter(frames)):
                patch = masker.patch(aligned.frame, aligned.face_box if aligned.has_face else None, aligned.landmarks)
                if patch is not None:
                    expected[aligned.index] = patch
                for back, grown in masker.revisions():
                    expected[aligned.index - back] = grown
                    revised.add(aligned.index - back)
    finally:
        processor.close()
    assert len(expected) >= 10 and sorted(source.track.occluders) == sorted(expected)
    assert revised and min(revised) < 16 <= max(revised)  # followed back across the first chunk's end ...
    assert in_track_when_handed_out == set(expected)  # ... whose wait for its occluders took that in
    for index, patch in expected.items():
        reference = AlignmentTrack.empty(1, processor)
        reference.keep_occluder(0, patch.box, patch.mask)
        assert source.track.occluders[index] == reference.occluders[0]


def with_banded_cup(frame, mouth, width, band_top: float):
    """A white cup with a red band (from `band_top` x face width below the lips' centre, 0.08 x W high), its rim
    just below the lips and its bottom past the chin."""
    out, mask = frame.copy(), np.zeros(frame.shape[:2], np.uint8)
    x0, y0 = int(mouth[0] - 0.22 * width), int(mouth[1] + 0.08 * width)
    x1, y1 = int(mouth[0] + 0.22 * width), int(mouth[1] + 0.7 * width)
    cv2.rectangle(mask, (x0, y0), (x1, y1), 1, -1)
    noise = np.random.default_rng(0).normal(0, 4, frame.shape)
    white = np.clip(np.array([236, 234, 228]) + noise, 0, 255).astype(np.uint8)
    out[mask > 0] = white[mask > 0]
    out[int(mouth[1] + band_top * width) : int(mouth[1] + (band_top + 0.08) * width), x0 : x1 + 1] = (190, 40, 45)
    below_band = mask > 0
    below_band[: int(mouth[1] + (band_top + 0.1) * width)] = False
    return out, mask > 0, below_band


@pytest.mark.parametrize("band_top, rule", [(0.2, "blend_contrast"), (0.32, "part_share")])
def test_an_objects_two_colours_are_one_object(face, band_top, rule):
    """A cup is white with a red band. Where the two meet, the edge, downscaled and blurred, is pink and passes
    for skin (`blend_contrast`); and where the band lies below the part of the cup the colours are learnt on, it
    is no colour of the cup (`part_share`). Either cut the white below the band off (lost in half of the bench's
    cup frames: docs/faces.md "Occlusion")."""
    frame, box, landmarks, mouth, width = face
    occluded, occluder, below_band = with_banded_cup(frame, mouth, width, band_top)
    blind = load_faces_config(overrides=[f"occlusion.{rule}=0"]).occlusion
    with OccluderMasker("auto", blind) as masker:
        mask = masker(occluded, box, landmarks)
    assert mask is not None and (mask[below_band] >= 0.99).mean() < 0.1  # without the rule: lost
    with OccluderMasker("auto") as masker:
        mask = masker(occluded, box, landmarks)
    assert mask is not None and (mask[occluder] >= 0.99).mean() >= 0.9


def test_a_chunk_is_handed_out_before_its_occluders_and_edited_only_after(tmp_path, monkeypatch):
    """The face pass does not stop at a chunk's end for the masker (which trails by one chunk at most): the chunk
    comes out while its occluder searches still run, and `FrameFinisher` waits for them before it edits the frames
    the masker reads, and before it reads the masks."""
    import threading

    import latentsync.faces.face_pass as face_pass_module
    from latentsync.faces.face_pass import ChunkSource
    from latentsync.pipelines.frame_finisher import FrameFinisher
    from tests.inference_fixtures import face_clip

    release, seen = threading.Event(), []

    class SlowMasker:  # finds a fixed patch in every frame, once released
        def patch(self, frame, face_box, landmarks):
            release.wait(timeout=30)
            seen.append(int(frame[0, 0, 0]))  # reads the frame, as the real masker does
            return OcclusionPatch((0, 0, 4, 4), np.ones((4, 4), np.float32))

        def revisions(self):
            return []

        def reset(self):
            pass

        def close(self):
            pass

    monkeypatch.setattr(face_pass_module, "occluder_masker", lambda mode, settings: SlowMasker())
    video, _ = face_clip(tmp_path, "clip", 1.6)
    source = ChunkSource(str(video), np.arange(40), 16, 64, 25, progress=False, occlusion="auto")
    chunks = iter(source)
    first = next(chunks)  # out although not one occluder search has finished
    assert len(first.occluder_jobs) >= 16 and not any(job.done() for job in first.occluder_jobs) and not seen
    finishing = threading.Thread(target=FrameFinisher(source.track), args=(first, None))
    finishing.start()
    finishing.join(timeout=0.5)
    assert finishing.is_alive()  # the finisher waits for the masker ...
    release.set()
    finishing.join(timeout=30)
    assert not finishing.is_alive() and all(int(i) in source.track.occluders for i in first.source_indices)
    assert len(seen) >= 16  # ... which read the frames before they could be edited
    rest = list(chunks)
    assert sum(len(c.source_indices) for c in rest) == 24 and len(source.track.occluders) == 40
