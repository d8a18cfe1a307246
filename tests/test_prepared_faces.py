"""A face pass kept and replayed (latentsync/faces/prepared.py): the record round-trips exactly through tensors,
a ChunkSource given it yields the same chunks without any detection, and the crops re-warped from the recorded
matrices equal the face pass's own bit for bit. Generated clips only (tests/inference_fixtures.py)."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

import latentsync.faces.face_pass as face_pass_module
import latentsync.faces.video as video_module
from latentsync.faces.choice import FaceChoice
from latentsync.faces.detector import FaceDetector
from latentsync.faces.face_pass import ChunkSource
from latentsync.faces.prepared import PreparedFaces, PreparedFacesError
from latentsync.faces.stored_masks import StoredMask
from latentsync.faces.video import AlignmentTrack, VideoFaceProcessor
from latentsync.pipelines.frame_schedule import source_frame_indices
from latentsync.utils.content_cache import EntryCache
from latentsync.utils.media import VideoReader
from tests.inference_fixtures import face_clip

FRAMES, RESOLUTION, CHUNK = 40, 64, 16
SHORT_GAP, LONG_GAP, CUT = (8, 9), tuple(range(24, 32)), 20  # bridged; longer than gaps.max_bridge: no face


@pytest.fixture(scope="module")
def detector():
    with FaceDetector(backend="mediapipe") as shared:
        yield shared


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    video, _ = face_clip(tmp_path_factory.mktemp("prepared"), "clip", FRAMES / 25, blank_frames=SHORT_GAP + LONG_GAP)
    return str(video)


def cut_choice(detector) -> FaceChoice:
    return FaceChoice.configured(detector.config).with_cuts([CUT])


def fresh_source(clip, detector, schedule, **kwargs) -> ChunkSource:
    return ChunkSource(clip, schedule, CHUNK, RESOLUTION, 25, detector=detector, progress=False,
                       face_choice=cut_choice(detector), occlusion="off", **kwargs)


@pytest.fixture(scope="module")
def first_run(clip, detector):
    """(chunks, record) of a normal run over the whole clip, the face pass covering every frame."""
    source = fresh_source(clip, detector, np.arange(FRAMES))
    chunks = list(source)
    return chunks, source.prepared()


def with_occluders(record: PreparedFaces) -> PreparedFaces:
    """The record with two occluder masks of different sizes (the generated clip has no occluder)."""
    tensors, meta = record.to_tensors()
    rng = np.random.default_rng(0)
    masks = {3: StoredMask.of((10, 20, 50, 44), rng.integers(0, 256, (12, 20), dtype=np.uint8)),
             37: StoredMask.of((0, 0, 5, 7), rng.integers(0, 256, (7, 5), dtype=np.uint8))}
    data = b"".join(m.data for m in masks.values())
    tensors.update({"occluder_index": torch.tensor([3, 37]),
                    "occluder_box": torch.tensor([m.box for m in masks.values()]),
                    "occluder_shape": torch.tensor([m.shape for m in masks.values()]),
                    "occluder_offsets": torch.tensor([0, len(masks[3].data), len(data)]),
                    "occluder_zlib": torch.from_numpy(np.frombuffer(data, np.uint8).copy())})
    return PreparedFaces.from_tensors(tensors, meta)


def test_the_record_holds_gaps_bridges_and_the_cut(first_run):
    _, record = first_run
    assert record.num_frames == FRAMES and record.cuts == (CUT,) and record.occlusion == "off"
    assert record.bridged[list(SHORT_GAP)].all() and record.has_face[list(SHORT_GAP)].all()
    assert not record.has_face[list(LONG_GAP)].any() and np.isnan(record.boxes[list(LONG_GAP)]).all()
    assert (record.track_ids[list(LONG_GAP)] == -1).all()
    assert record.stats["frames"] == FRAMES and record.stats["without_face"] == len(LONG_GAP)
    assert record.stats["bridged"] == len(SHORT_GAP)


def test_round_trip_is_exact(first_run):
    record = with_occluders(first_run[1])
    tensors, meta = record.to_tensors()
    back = PreparedFaces.from_tensors(tensors, meta, VideoFaceProcessor(RESOLUTION, detector="mediapipe"))
    assert back == record
    for name in ("matrices", "has_face", "bridged", "boxes", "points3", "track_ids"):
        assert np.array_equal(getattr(back, name), getattr(record, name), equal_nan=True)
        assert getattr(back, name).dtype == getattr(record, name).dtype
    assert back.occluders.keys() == {3, 37}
    for index, stored in record.occluders.items():
        assert back.occluders[index].box == stored.box
        assert np.array_equal(back.occluders[index].pixels(), stored.pixels())
    assert (back.cuts, back.stats, back.face_size) == (record.cuts, record.stats, record.face_size)
    assert back != first_run[1]  # the occluders count
    said = replace(record, report=("face choice speaker: track 1 ...", "shot 1/1: frames 0-39 (40): track 1"))
    assert PreparedFaces.from_tensors(*said.to_tensors()).report == said.report
    tensors, meta = record.to_tensors()
    del meta["report"]  # written before the report was kept: read as saying nothing
    assert PreparedFaces.from_tensors(tensors, meta).report == ()


def test_round_trip_through_the_entry_cache(first_run, tmp_path):
    """Bool and empty tensors and the JSON meta survive a safetensors entry (no occluder, no cut: empty tensors)."""
    record = first_run[1]
    for kept in (record, with_occluders(record)):
        cache = EntryCache(tmp_path)
        assert cache.put("faces", *kept.to_tensors()) is not None
        entry = cache.get("faces")
        assert PreparedFaces.from_tensors(entry.tensors, entry.meta) == kept
    no_cut = replace(record, cuts=())
    cache.put("no_cut", *no_cut.to_tensors())
    assert PreparedFaces.from_tensors(cache.get("no_cut").tensors, cache.get("no_cut").meta) == no_cut != record


def test_the_reuse_cache_keeps_the_masks_in_shards_and_a_lost_shard_means_a_new_face_pass(first_run, tmp_path):
    """`store_prepared` writes the occluder masks' bytes in shards of their own (whole masks, about the shard size;
    the run never holds them all), `load_prepared` reads them back one shard at a time into the record's store;
    a shard evicted since makes the entry unusable (None: the face pass is run again), never a wrong mask."""
    from latentsync.pipelines.prepared_video import load_prepared, store_prepared

    record = with_occluders(first_run[1])
    sizes = [len(record.occluders[i].data) for i in (3, 37)]
    cache = EntryCache(tmp_path)
    store_prepared(cache, "video", record, {}, shard_bytes=max(sizes))  # one mask a shard
    shards = sorted(p for p in tmp_path.glob("*.safetensors") if p.stem != "video")
    assert len(shards) == 2
    back = load_prepared(cache, "video")
    assert back is not None and back.faces == record and back.faces.occluders.keys() == {3, 37}
    assert "occluder_zlib" not in cache.get("video").tensors  # the entry itself holds only their index
    shards[1].unlink()
    assert load_prepared(cache, "video") is None


def test_a_broken_or_foreign_record_is_refused(first_run):
    tensors, meta = with_occluders(first_run[1]).to_tensors()
    with pytest.raises(PreparedFacesError, match="format"):
        PreparedFaces.from_tensors(tensors, {**meta, "format": 0})
    with pytest.raises(PreparedFacesError, match="'matrices' is float64"):
        PreparedFaces.from_tensors({**tensors, "matrices": tensors["matrices"].double()}, meta)
    with pytest.raises(PreparedFacesError, match=r"'matrices' is float32\[40, 2, 3\], expected float32\[41"):
        PreparedFaces.from_tensors(tensors, {**meta, "num_frames": FRAMES + 1})
    offsets = tensors["occluder_offsets"]
    with pytest.raises(PreparedFacesError, match="occluder masks do not add up"):
        PreparedFaces.from_tensors({**tensors, "occluder_offsets": offsets - torch.tensor([0, 0, 1])}, meta)
    with pytest.raises(PreparedFacesError, match="occluder masks do not add up"):  # a stream cut short
        PreparedFaces.from_tensors({**tensors, "occluder_offsets": offsets - torch.tensor([0, 1, 1]),
                                    "occluder_zlib": torch.cat([tensors["occluder_zlib"][: int(offsets[1]) - 1],
                                                                tensors["occluder_zlib"][int(offsets[1]):]])}, meta)
    with pytest.raises(PreparedFacesError, match="occluder masks do not add up"):  # a mask of another size
        PreparedFaces.from_tensors({**tensors, "occluder_shape": tensors["occluder_shape"] + 1}, meta)
    with pytest.raises(PreparedFacesError, match="resolution"):
        PreparedFaces.from_tensors(tensors, meta, VideoFaceProcessor(RESOLUTION * 2, detector="mediapipe"))
    for report in ("shot 1/1", [1, 2]):
        with pytest.raises(PreparedFacesError, match="report must be lines of text"):
            PreparedFaces.from_tensors(tensors, {**meta, "report": report})


def no_face_pass(monkeypatch, detector) -> None:
    """Every part of the face pass fails if called: detection, landmarks, occluder search, cut search."""
    def refuse(*args, **kwargs):
        raise AssertionError("the face pass ran")

    for name in ("detect", "landmarks"):
        monkeypatch.setattr(detector.backend, name, refuse)
    monkeypatch.setattr(face_pass_module, "occluder_masker", refuse)
    monkeypatch.setattr(video_module, "TimelineCuts", refuse)


def test_a_replayed_source_yields_the_same_chunks_without_detecting(clip, detector, first_run, monkeypatch):
    _, record = first_run
    schedule = source_frame_indices(100, FRAMES, "pingpong")  # forward, backward, forward again
    expected = list(fresh_source(clip, detector, schedule))
    no_face_pass(monkeypatch, detector)
    replay = ChunkSource(clip, schedule, CHUNK, RESOLUTION, 25, detector=detector, progress=False, occlusion="off",
                         prepared=record)
    chunks = list(replay)
    assert len(chunks) == len(expected)
    for got, want in zip(chunks, expected, strict=True):
        assert np.array_equal(got.source_indices, want.source_indices)
        assert np.array_equal(got.frames, want.frames) and np.array_equal(got.has_face, want.has_face)
        assert torch.equal(got.faces, want.faces) if want.faces is not None else got.faces is None
        assert np.array_equal(got.weights, want.weights)
    assert replay.cuts == {CUT} and replay.track.stats.as_dict() == record.stats
    assert replay.prepared() == record


@pytest.mark.parametrize("resolution", [RESOLUTION, 256])
def test_face_pass_crops_equal_the_rewarp_of_every_frame(clip, detector, resolution):
    """The crop the face pass hands out (first traversal) is `track.warp` of the same decoded frame, bit for bit:
    a replayed run feeds the networks the very same faces."""
    source = ChunkSource(clip, np.arange(FRAMES), CHUNK, resolution, 25, detector=detector, progress=False,
                         face_choice=cut_choice(detector), occlusion="off")
    with VideoReader(clip, target_fps=25) as reader:
        for chunk in source:
            faced = chunk.source_indices[chunk.has_face]
            rewarped = source.track.warp(reader.get_frames(faced), faced)
            assert torch.equal(chunk.faces, rewarped)


def test_the_face_pass_covers_face_frames_past_the_schedule(clip, detector, first_run):
    source = fresh_source(clip, detector, np.arange(12), face_frames=FRAMES)
    chunks = list(source)
    assert sum(len(c.frames) for c in chunks) == 12
    assert source.prepared() == first_run[1]
    short = fresh_source(clip, detector, np.arange(12))
    assert short.prepared() is None  # nothing aligned yet
    list(short)
    assert short.prepared().num_frames == 12


def test_a_record_covering_too_few_frames_is_refused(clip, detector):
    short = fresh_source(clip, detector, np.arange(12))
    list(short)
    with pytest.raises(PreparedFacesError, match=r"covers source frames 0..11, but this run shows frames up to 39"):
        ChunkSource(clip, np.arange(FRAMES), CHUNK, RESOLUTION, 25, detector=detector, progress=False,
                    occlusion="off", prepared=short.prepared())
    with pytest.raises(PreparedFacesError, match="occlusion 'off', this run asks for 'auto'"):
        ChunkSource(clip, np.arange(12), CHUNK, RESOLUTION, 25, detector=detector, progress=False,
                    occlusion="auto", prepared=short.prepared())


def test_a_short_schedule_replays_like_a_fresh_run_over_the_same_frames(clip, detector, first_run):
    """What the face pass covers matters at its end: a gap there has no right neighbour to bridge to. A record of
    the whole clip replayed for 10 frames equals a fresh 10-frame run whose face pass covers the whole clip."""
    schedule = np.arange(10)  # ends inside the short gap (8, 9)
    replayed = list(ChunkSource(clip, schedule, CHUNK, RESOLUTION, 25, detector=detector, progress=False,
                                occlusion="off", prepared=first_run[1]))
    covering = list(fresh_source(clip, detector, schedule, face_frames=FRAMES))
    alone = list(fresh_source(clip, detector, schedule))
    assert replayed[0].has_face.all() and covering[0].has_face.all()  # the gap is bridged
    assert torch.equal(replayed[0].faces, covering[0].faces)
    assert not alone[0].has_face[list(SHORT_GAP)].any()  # a face pass ending in the gap cannot bridge it


def test_an_occluder_mask_is_kept_exactly_and_compressed():
    """The track keeps each frame's occluder mask as zlib-compressed uint8 (`StoredMask`): it gives back exactly
    the uint8 mask it stored, and a feathered mask (mostly 0 and 255) takes well under a third of its raw size."""
    disc = np.zeros((90, 120), np.float32)
    cv2.circle(disc, (60, 50), 28, 1.0, -1)
    mask = np.minimum(cv2.GaussianBlur(cv2.dilate(disc, np.ones((9, 9), np.uint8)), (9, 9), 2.0), 1.0)
    track = AlignmentTrack.empty(5, VideoFaceProcessor(RESOLUTION, detector="mediapipe"))
    track.keep_occluder(2, (300, 200, 420, 290), mask)
    stored = track.occluders[2]
    assert stored.box == (300, 200, 420, 290) and stored.shape == (90, 120)
    assert np.array_equal(stored.pixels(), np.rint(mask * 255).astype(np.uint8))
    assert len(stored.data) < mask.size / 3
    patch = track.occluder(2)
    assert patch.box == (300, 200, 420, 290) and patch.mask.dtype == np.float32
    assert np.abs(patch.mask - mask).max() <= 0.5 / 255 + 1e-6
    assert track.occluder(1) is None
