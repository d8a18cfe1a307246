"""Edges fade and occluders stay: the blend rules of latentsync/faces/blend.py, alone and inside the face pass."""

from __future__ import annotations

import numpy as np
import pytest

from latentsync.faces.blend import blend_edit, changed_box, distance_to_unedited, edit_weights
from latentsync.faces.face_pass import ChunkSource
from latentsync.faces.occlusion import OcclusionPatch
from tests.inference_fixtures import face_clip


def switches(edited: np.ndarray) -> list[int]:
    """Positions k where edited[k] != edited[k + 1]."""
    return np.flatnonzero(np.diff(edited.astype(int)) != 0).tolist()


def test_distance_to_unedited():
    edited = np.array([1, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1], dtype=bool)
    assert distance_to_unedited(edited).tolist() == [2, 1, 0, 1, 2, 3, 2, 1, 0, 0, 1]
    assert distance_to_unedited(np.ones(3, bool)).tolist() == [4, 4, 4]


@pytest.mark.parametrize("fade", [3, 4])
def test_every_switch_fades_over_at_least_fade_frames(fade):
    rng = np.random.default_rng(0)
    edited = rng.random(400) > 0.3
    edited[100:140] = True  # one long run: reaches the full edit
    weights = edit_weights(edited, fade)
    assert np.all(weights[~edited] == 0) and np.all(weights[edited] > 0)
    assert weights[100 + fade + 1 : 140 - fade - 1].min() == 1.0
    # No pop: from one frame to the next the edit never changes by more than 1 / (fade + 1), so going from
    # unedited to fully edited passes through `fade` intermediate frames.
    assert np.abs(np.diff(weights)).max() == pytest.approx(1 / (fade + 1))
    for k in switches(edited):
        inside = k + 1 if edited[k + 1] else k
        assert weights[inside] == pytest.approx(1 / (fade + 1))


def test_no_fade_at_the_ends_of_the_video():
    assert edit_weights(np.ones(10, bool), 3).tolist() == [1.0] * 10
    assert edit_weights(np.ones(10, bool), 0).tolist() == [1.0] * 10


def test_changed_box_holds_exactly_the_changed_pixels():
    """The box is the smallest one holding every pixel that differs in any channel (a single changed byte counts,
    in the first or last column and row as anywhere)."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        height, width = (int(v) for v in rng.integers(1, 40, 2))
        original = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        restored = original.copy()
        for _ in range(int(rng.integers(0, 4))):
            y, x, c = int(rng.integers(height)), int(rng.integers(width)), int(rng.integers(3))
            restored[y, x, c] ^= np.uint8(rng.integers(1, 256))
        changed = np.argwhere((original != restored).any(axis=-1))
        expected = None if len(changed) == 0 else (slice(changed[:, 0].min(), changed[:, 0].max() + 1),
                                                   slice(changed[:, 1].min(), changed[:, 1].max() + 1))
        assert changed_box(original, restored) == expected


def test_blend_keeps_occluder_pixels_and_mixes_by_weight():
    rng = np.random.default_rng(1)
    original = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    generated = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    generated[:5] = original[:5]  # the paste-back only changed rows 5.. (its feathered footprint)

    full = generated.copy()
    blend_edit(original, full, 1.0)
    assert np.array_equal(full, generated)  # full weight, no occluder: the official paste-back, untouched

    occluder = OcclusionPatch((10, 10, 30, 20), np.ones((10, 20), np.float32))
    kept = generated.copy()
    blend_edit(original, kept, 1.0, occluder)
    assert np.array_equal(kept[10:20, 10:30], original[10:20, 10:30])
    assert np.array_equal(kept[25:], generated[25:])

    # A soft occluder whose box reaches beyond the changed rows: as the same mask over the whole frame.
    soft = OcclusionPatch((5, 0, 45, 30), rng.random((30, 40)).astype(np.float32))
    by_patch, by_frame = generated.copy(), generated.copy()
    blend_edit(original, by_patch, 0.7, soft)
    full = soft.full((40, 50))
    keep = 0.7 * (1.0 - full[5:])
    expected = original[5:].astype(np.float32) + keep[..., None].astype(np.float32) * (
        generated[5:].astype(np.float32) - original[5:].astype(np.float32))
    by_frame[5:] = np.clip(np.rint(expected), 0, 255).astype(np.uint8)
    assert np.abs(by_patch.astype(int) - by_frame).max() <= 1

    half = generated.copy()
    blend_edit(original, half, 0.5)
    expected = np.rint((original.astype(float) + generated.astype(float)) / 2)
    assert np.abs(half.astype(float) - expected).max() <= 1

    none = generated.copy()
    blend_edit(original, none, 0.0)
    assert np.array_equal(none, original)


def test_face_pass_weights_fade_around_a_gap_without_face(tmp_path):
    video, _ = face_clip(tmp_path, "gaps", 1.6, blank_frames=tuple(range(8, 20)))  # 40 frames, no face in 8..19
    schedule = np.arange(40)
    source = ChunkSource(str(video), schedule, 16, 64, 25, progress=False, fade_frames=3)
    chunks = list(source)
    weights = np.concatenate([c.weights for c in chunks])
    has_face = np.concatenate([c.has_face for c in chunks])
    assert has_face.tolist() == [k not in range(8, 20) for k in range(40)]
    assert weights[:5].tolist() == [1.0] * 5
    assert weights[5:8].tolist() == pytest.approx([0.75, 0.5, 0.25])  # fading out before the gap
    assert weights[8:20].tolist() == [0.0] * 12
    assert weights[20:23].tolist() == pytest.approx([0.25, 0.5, 0.75])  # and in after it
    assert weights[23:].min() == 1.0


def test_a_batch_row_sets_its_own_occlusion():
    from latentsync.api import InputError, LipsyncOptions
    from latentsync.cli.inference import row_options

    options = LipsyncOptions(face_choice="tracked", occlusion="auto")
    assert row_options({"occlusion": "off"}, options).occlusion == "off"
    assert row_options({"occlusion": "off"}, options).face_choice == "tracked"  # face settings untouched
    assert row_options({"face_choice": "largest"}, options).occlusion == "auto"
    with pytest.raises(InputError, match="unknown --occlusion 'sometimes'"):
        row_options({"occlusion": "sometimes"}, options)
