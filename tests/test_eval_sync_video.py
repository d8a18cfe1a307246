"""Face tracks, crops and the whole-video SyncNet protocol (random weights; real face video when available)."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from eval.settings import SyncNetProtocol, TrackingSettings, load_eval_config
from eval.syncnet.face_tracks import FaceTrackExtractor, NoFaceError, VideoTooShortError
from eval.syncnet.tracking import bounding_box_iou, crop_face, smooth_track, track_faces
from tests.helpers import shared_file, write_video


def _dets(frames, box, step=(0.0, 0.0)):
    """One detection per frame index in `frames`, the box drifting by `step` pixels per frame."""
    return {f: np.array([[box[0] + step[0] * f, box[1] + step[1] * f, box[2] + step[0] * f, box[3] + step[1] * f, 0.99]])
            for f in frames}


def _as_list(by_frame, num_frames):
    return [by_frame.get(f, np.zeros((0, 5))) for f in range(num_frames)]


@pytest.fixture
def settings():
    return TrackingSettings.from_eval_config()


def test_iou():
    assert bounding_box_iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert bounding_box_iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    assert bounding_box_iou([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0


def test_track_needs_more_than_min_track_detections(settings):
    box = (100, 100, 260, 300)
    exactly = track_faces(_as_list(_dets(range(settings.min_track), box), 80), 0, settings)
    assert exactly == []
    tracks = track_faces(_as_list(_dets(range(settings.min_track + 1), box, (1.0, 0.5)), 80), 0, settings)
    assert len(tracks) == 1
    assert tracks[0].start == 0 and tracks[0].end == settings.min_track


def test_gaps_are_interpolated_up_to_the_limit(settings):
    gap = settings.max_gap_frames
    box = (100, 100, 260, 300)
    frames = list(range(30)) + list(range(30 + gap - 1, 30 + gap - 1 + 30))  # a gap of exactly max_gap frames
    tracks = track_faces(_as_list(_dets(frames, box, (2.0, 0.0)), 120), 10, settings)
    assert len(tracks) == 1
    track = tracks[0]
    assert track.frames.tolist() == list(range(10, 10 + frames[-1] + 1))
    middle = 10 + 40
    np.testing.assert_allclose(track.boxes[middle - 10], [100 + 2 * 40, 100, 260 + 2 * 40, 300])

    split = list(range(30)) + list(range(30 + gap, 30 + gap + 30))
    small = TrackingSettings.from_eval_config(load_eval_config(overrides=["tracking.min_track=20"]))
    assert len(track_faces(_as_list(_dets(split, box), 120), 0, small)) == 2


def test_small_faces_and_two_people(settings):
    tiny = track_faces(_as_list(_dets(range(60), (10, 10, 60, 70)), 60), 0, settings)
    assert tiny == []
    both = {f: np.vstack([_dets([f], (0, 0, 150, 180))[f], _dets([f], (400, 0, 550, 180))[f]]) for f in range(60)}
    tracks = track_faces(_as_list(both, 60), 0, settings)
    assert len(tracks) == 2
    assert sorted(t.boxes[0, 0] for t in tracks) == [0, 400]


def test_crop_matches_padded_frame_arithmetic(settings):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    for size, cx, cy in [(40.0, 160.3, 120.7), (70.5, 20.0, 30.0), (55.0, 300.0, 230.0)]:
        # Reference: the original pads the whole frame by int(s * 1.8) with grey 110 and slices.
        pad = int(size * (1 + 2 * settings.crop_scale))
        padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), constant_values=settings.pad_value)
        my, mx = cy + pad, cx + pad
        face = padded[int(my - size): int(my + size * 1.8), int(mx - size * 1.4): int(mx + size * 1.4)]
        expected = cv2.resize(face, (224, 224))
        np.testing.assert_array_equal(crop_face(image, size, cx, cy, settings, 224), expected)


def test_smoothing_uses_box_half_size_and_centre(settings):
    track = track_faces(_as_list(_dets(range(60), (100, 50, 300, 350)), 60), 0, settings)[0]
    window = smooth_track(track, settings.smooth_kernel)
    assert window.size[30] == 150 and window.x[30] == 200 and window.y[30] == 200
    assert window.size[0] == 150  # zero padding of the median filter does not win at the ends


# --------------------------------------------------------------------------- whole videos


def _write_clip(path, frames_rgb, tmp_path, fps=25):
    from latentsync.utils.media import write_wav

    seconds = len(frames_rgb) / fps
    t = np.arange(int(seconds * 16000)) / 16000
    wav = tmp_path / f"{path.stem}.wav"
    write_wav(wav, 0.3 * np.sin(2 * np.pi * 220 * t), 16000)
    return write_video(path, [frames_rgb], fps, audio_path=wav)


@pytest.fixture(scope="module")
def random_evaluator():
    from eval.syncnet.video_eval import SyncEvaluator

    return SyncEvaluator.from_config(detector="mediapipe", width_divisor=4, load_weights=False)


@pytest.fixture(scope="module")
def demo_clips(random_evaluator):
    return random_evaluator.extractor(shared_file("media", "demo1_video.mp4"))


@pytest.fixture(scope="module")
def demo_result(random_evaluator, demo_clips):
    from eval.syncnet.video_eval import evaluate_clips

    return evaluate_clips(random_evaluator.syncnet, demo_clips, "demo1_video.mp4",
                          random_evaluator.extractor.detector.name)


@pytest.mark.needs_shared
def test_real_face_video_end_to_end(demo_result):
    vshift = SyncNetProtocol.from_eval_config().vshift
    assert demo_result.detector == "mediapipe"
    assert demo_result.num_tracks >= 1 and len(demo_result.tracks) == demo_result.num_tracks
    assert isinstance(demo_result.av_offset, int) and -vshift <= demo_result.av_offset <= vshift
    assert math.isfinite(demo_result.lse_c) and demo_result.lse_c >= 0
    assert math.isfinite(demo_result.lse_d) and demo_result.lse_d > 0
    track = demo_result.tracks[0]
    assert track["end_frame"] - track["start_frame"] + 1 > TrackingSettings.from_eval_config().min_track
    assert demo_result.lse_d == pytest.approx(np.mean([t["lse_d"] for t in demo_result.tracks]))


@pytest.mark.needs_shared
def test_report_json_and_table(demo_result, tmp_path):
    from eval.eval_sync_conf import render, summarize
    from eval.report import write_json

    summary = summarize([demo_result.as_dict()], [{"video": "x.mp4", "error": "no face detected in x.mp4"}])
    text = render(summary)
    assert "demo1_video.mp4" in text and "lse_c" in text and "skipped x.mp4" in text
    loaded = json.loads(write_json(tmp_path / "out" / "sync.json", summary).read_text())
    assert loaded["videos"][0]["av_offset"] == demo_result.av_offset
    assert loaded["mean"]["lse_c"] == pytest.approx(demo_result.lse_c)


@pytest.mark.needs_shared
def test_crops_follow_the_face(random_evaluator, demo_clips):
    clips = demo_clips
    crops = clips[0].crops_bgr
    assert crops.shape[1:] == (224, 224, 3) and crops.dtype == np.uint8
    assert len(clips[0].audio_int16) == len(crops) * 640
    # The tracked face stays detectable inside its own crop.
    detector = random_evaluator.extractor.detector
    found = [len(detector(np.ascontiguousarray(crops[i][..., ::-1]))) > 0 for i in (0, len(crops) // 2, -1)]
    assert all(found)


def test_video_without_face_gives_clear_error(tmp_path, random_evaluator):
    x = np.broadcast_to(np.linspace(0, 255, 320)[None, :, None], (180, 320, 1))
    y = np.broadcast_to(np.linspace(0, 255, 180)[:, None, None], (180, 320, 1))
    base = np.concatenate([x, y, np.full((180, 320, 1), 90.0)], axis=2).astype(np.uint8)  # colour gradient
    frames = np.stack([base] * 60)
    for k, frame in enumerate(frames):  # a moving bright bar, so the clip is not static
        frame[:, (5 * k) % 300 : (5 * k) % 300 + 20] = 255
    video = _write_clip(tmp_path / "no_face.mp4", frames, tmp_path)
    with pytest.raises(NoFaceError, match="no face detected in .*no_face.mp4"):
        random_evaluator(video)

    from eval.eval_sync_conf import main

    code = main(["--video_path", str(video), "--random_weights", "--detector", "mediapipe",
                 "--json_out", str(tmp_path / "r.json")])
    assert code == 1
    assert "no face detected" in json.loads((tmp_path / "r.json").read_text())["errors"][0]["error"]


@pytest.mark.needs_shared
def test_video_shorter_than_min_track_says_so(tmp_path, random_evaluator):
    from latentsync.utils.media import VideoReader

    reader = VideoReader(shared_file("media", "demo1_video.mp4"), target_fps=25)
    frames = np.stack([cv2.resize(f, (270, 480)) for f in reader.get_frames(range(30))])
    video = _write_clip(tmp_path / "short.mp4", frames, tmp_path)
    with pytest.raises(VideoTooShortError, match=r"30 frames .* too short: a face track needs more than 50 frames"):
        random_evaluator(video)


def test_extractor_rejects_when_no_track_is_long_enough(tmp_path, settings):
    class EveryOtherFrame:
        name = "stub"

        def __init__(self):
            self.calls = 0

        def __call__(self, frame):
            self.calls += 1
            return np.array([[10, 10, 200, 220, 0.99]]) if self.calls <= 20 else np.zeros((0, 5))

    frames = np.full((60, 120, 160, 3), 128, np.uint8)
    video = _write_clip(tmp_path / "brief_face.mp4", frames, tmp_path)
    extractor = FaceTrackExtractor(EveryOtherFrame(), settings, SyncNetProtocol.from_eval_config())
    with pytest.raises(NoFaceError, match="faces found in 20 of 60 frames"):
        extractor(video)


@pytest.mark.needs_shared
def test_evaluate_on_a_crop_video_file(random_evaluator, demo_clips, tmp_path):
    """`SyncNetEval.evaluate(path)` (the original's per-crop-video entry point) = the array path on the decoded file."""
    from eval.syncnet.features import float_to_int16_scale
    from latentsync.utils.media import VideoReader, read_audio

    clip = demo_clips[0]
    crops_rgb = np.ascontiguousarray(clip.crops_bgr[:60, :, :, ::-1])
    video = _write_clip(tmp_path / "crop.mp4", crops_rgb, tmp_path)
    syncnet = random_evaluator.syncnet
    offset, min_dist, conf = syncnet.evaluate(video)
    decoded = VideoReader(video, target_fps=25).get_frames(range(60))[..., ::-1]
    expected = syncnet.evaluate_arrays(np.ascontiguousarray(decoded), float_to_int16_scale(read_audio(video)))
    assert (offset, min_dist, conf) == (expected.av_offset, expected.min_dist, expected.confidence)
