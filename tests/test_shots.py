"""Shot cuts: found once on small frames (`latentsync.faces.shots`), and everything in the face pass restarts there.

Generated clips with a hard cut: two shots of generated faces on different backgrounds. A shot whose face does
not move with the audio (its mouth follows another speech) must be judged "nobody speaks" by the null threshold
and pass through untouched with `speaker`.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from latentsync.faces.all_faces import MouthTrack
from latentsync.faces.choice import FaceChoice, resolve_face_choice
from latentsync.faces.detector import FaceDetector
from latentsync.faces.settings import load_faces_config
from latentsync.faces.shots import find_cuts, shot_ranges, timeline_cuts
from latentsync.faces.speaker import choose_speaker, find_speaker
from latentsync.faces.video import VideoFaceProcessor
from latentsync.utils.media import iter_frames
from latentsync.utils.progress import RunProgress
from tests.helpers import shared_file
from tests.test_speaker import _activity

CONFIG = load_faces_config()
SIZE, FRAME = 160, (240, 400)  # face square, frame (h, w)


def _speech(seconds: float, seed: int):
    from latentsync.data.synthetic import synthetic_config
    from latentsync.data.synthetic_speech import synthesize

    cfg = synthetic_config([f"resolution={SIZE}", f"clip_seconds={seconds}"])
    return cfg, synthesize(cfg.clip_seconds, cfg.fps, cfg.sample_rate, np.random.default_rng(seed), cfg.speech)


def _shot(seconds: float, face_seed: int, x: int, background: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """One shot: a generated face at column `x` whose mouth follows its own generated speech (also returned)."""
    from latentsync.data.synthetic_face import FaceRenderer

    cfg, track = _speech(seconds, face_seed)
    face = FaceRenderer(cfg.resolution, cfg, np.random.default_rng(face_seed), fps=cfg.fps).render(track.opening,
                                                                                                  track.width)
    frames = np.empty((len(face), *FRAME, 3), np.uint8)
    frames[:] = background
    top = (FRAME[0] - SIZE) // 2
    frames[:, top:top + SIZE, x:x + SIZE] = face
    return frames, track.samples


def _write(folder, name, frames, samples) -> str:
    from latentsync.utils.media import VideoWriter, write_wav

    wav = folder / f"{name}.wav"
    write_wav(wav, samples, 16000)
    video = folder / f"{name}.mp4"
    with VideoWriter(video, 25, audio_path=wav) as writer:
        writer.write(frames)
    return str(video)


@pytest.fixture(scope="module")
def cut_clip(tmp_path_factory):
    """Shot 1 (3 s): face A on the left with its own speech. Shot 2 (3 s): face B on the right on another
    background, its mouth following its own speech, while the audio goes on with a third speech: nobody
    visible speaks in shot 2. Returns (video, cut frame, frames)."""
    folder = tmp_path_factory.mktemp("shots")
    first, speech_a = _shot(3.0, 1, 30, (100, 100, 100))
    second, _ = _shot(3.0, 2, 210, (200, 60, 40))
    other = _speech(3.0, 4)[1].samples  # unrelated to face B's speech (score 0.13 vs null 0.32)
    frames = np.concatenate([first, second])
    return _write(folder, "cut", frames, np.concatenate([speech_a, other])), len(first), frames


@pytest.fixture(scope="module")
def detector():
    with FaceDetector() as det:
        yield det


def test_timeline_cuts_map_source_frames_to_the_first_output_frame_showing_them():
    indices = np.array([0, 1, 1, 2, 4, 5, 5, 6])  # a 25 fps timeline over a source with repeats and a skip
    assert timeline_cuts([2, 3, 6, 9], indices) == [3, 4, 7]  # 3 (skipped) starts at the frame showing 4
    assert timeline_cuts([0], indices) == []  # the first frame starts no new shot
    assert shot_ranges([3, 7], 8) == [(0, 3), (3, 7), (7, 8)] and shot_ranges([], 5) == [(0, 5)]


def test_the_cut_is_found_at_its_exact_frame(cut_clip):
    video, cut, frames = cut_clip
    assert find_cuts(video, CONFIG.shots, 25, len(frames)) == [cut]
    assert find_cuts(video, CONFIG.shots, 25, cut) == []  # the output stops before the cut


def _aligned(frames, detector, face_choice=None, cuts=None):
    face_choice = face_choice or FaceChoice.configured(detector.config)
    face_choice = face_choice if cuts is None else face_choice.with_cuts(cuts)
    processor = VideoFaceProcessor(detector=detector, face_choice=face_choice)
    return list(processor.process(iter([frames]), batch_size=16)), processor


def test_everything_restarts_at_the_cut(cut_clip, detector):
    """From the cut on, the face pass gives exactly what a fresh face pass started at the cut gives: tracking,
    point smoothing and the official nose smoothing (p_bias) carry nothing over."""
    _, cut, frames = cut_clip
    frames, cut = frames[cut - 20:cut + 20], 20  # 20 frames each side are enough (and fast)
    whole, _ = _aligned(frames, detector, cuts=[cut])
    fresh, _ = _aligned(frames[cut:], detector)
    assert all(a.has_face for a in whole) and all(a.has_face for a in fresh)
    for a, b in zip(whole[cut:], fresh, strict=True):
        assert np.array_equal(a.points3, b.points3)
        assert np.allclose(a.affine_matrix.numpy(), b.affine_matrix.numpy(), atol=1e-6)
    assert whole[cut].track_id != whole[cut - 1].track_id
    found, processor = _aligned(frames, detector)  # no cuts given: the face pass finds the cut on its own frames
    assert processor.cuts == {cut}
    for a, b in zip(found[cut:], fresh, strict=True):
        assert np.array_equal(a.points3, b.points3)
    uncut, _ = _aligned(frames, detector, cuts=[])  # told there is none: state carries over
    assert not np.allclose(uncut[cut + 1].affine_matrix.numpy(), fresh[1].affine_matrix.numpy(), atol=1e-6)


def test_the_cut_finders_thread_ends_with_the_face_pass(cut_clip, detector):
    """Cuts are found in a thread of their own a few frames ahead of the tracker; a pass stopped early stops it."""
    _, cut, frames = cut_clip
    processor = VideoFaceProcessor(detector=detector)
    results = processor.process(iter(frames[cut - 10:cut + 10]), batch_size=1)
    assert [next(results).index for _ in range(3)] == [0, 1, 2]
    assert any(t.name.startswith("cuts") for t in threading.enumerate())
    results.close()
    assert not any(t.name.startswith("cuts") for t in threading.enumerate())


def test_no_gap_is_bridged_across_a_cut(cut_clip, detector):
    _, cut, frames = cut_clip
    gapped, cut = frames[cut - 15:cut + 15].copy(), 15
    gapped[cut - 3:cut] = gapped[0, 0, 0]  # the face leaves 3 frames before the cut (shorter than max_bridge)
    bridged, _ = _aligned(gapped, detector)
    assert [a.bridged for a in bridged[cut - 3:cut]] == [True] * 3  # without the cut they would be bridged
    restarted, processor = _aligned(gapped, detector, cuts=[cut])
    assert not any(a.has_face for a in restarted[cut - 3:cut]) and processor.stats.bridged == 0
    assert all(a.has_face for a in restarted[cut:])


def test_the_null_threshold_rejects_a_mouth_that_does_not_follow_the_audio():
    rng = np.random.default_rng(5)
    n = 100
    own, heard = _activity(rng, n), _activity(rng, n)
    mouth = 0.05 + 0.03 * np.roll(own, -2) * (1 + np.sin(2 * np.pi * np.arange(n) / 6)) / 2
    face = [MouthTrack(1, np.zeros((n, 4)), mouth)]
    silent = choose_speaker(face, np.log(np.maximum(heard * 0.3, 1e-3)), CONFIG.speaker)
    assert silent.chosen is None and silent.boxes is None
    assert np.isfinite(silent.candidates[0].score) and silent.candidates[0].score <= silent.candidates[0].threshold
    assert "nobody speaks" in silent.shot_lines()[0] and "untouched" in silent.shot_lines()[0]
    speaking = choose_speaker(face, np.log(np.maximum(own * 0.3, 1e-3)), CONFIG.speaker)
    assert speaking.chosen is not None and speaking.chosen.score > speaking.chosen.threshold


def test_speaker_per_shot_leaves_the_shot_without_a_speaker_untouched(cut_clip, detector):
    video, cut, frames = cut_clip
    choice = find_speaker(video, detector, 25, len(frames))
    assert choice.cuts == [cut] and [(s.start, s.end) for s in choice.shots] == [(0, cut), (cut, len(frames))]
    first, second = choice.shots
    assert first.chosen is not None and second.chosen is None and len(second.candidates) == 1
    assert np.isnan(choice.boxes[cut:]).all() and np.isfinite(choice.boxes[:cut]).all(axis=1).mean() > 0.9
    said = []
    settings = resolve_face_choice("speaker", None, None, video, detector, 25, len(frames), RunProgress(False),
                                   say=said.append)
    table = [line for line in said if line.startswith("shot ")]
    assert len(table) == 2 and "score" in table[0] and "null" in table[0] and "none" in table[1], said
    aligned, _ = _aligned(frames, detector, settings)
    assert all(a.has_face for a in aligned[5:cut]) and not any(a.has_face for a in aligned[cut:])
    largest, _ = _aligned(frames, detector, cuts=settings.cuts)
    assert all(a.has_face for a in largest[cut:])  # the official choice edits the face in shot 2


def test_tracks_of_all_faces_end_at_the_cut(cut_clip, detector):
    """The same face in both shots at the same place is two tracks: none continues across the cut."""
    from latentsync.faces.all_faces import AllFacesTracker

    _, cut, frames = cut_clip
    same = np.concatenate([frames[:cut], frames[:cut]])
    tracker = AllFacesTracker(detector, len(same))
    for k, frame in enumerate(same):
        tracker.update(frame, cut=k == cut)
    tracks = [t for t in tracker.tracks() if t.num_frames]
    spans = [t.first + np.flatnonzero(np.isfinite(t.opening)) for t in tracks]  # video frames
    assert len(spans) == 2 and all(s.max() < cut or s.min() >= cut for s in spans)
    for track, span in zip(tracks, spans, strict=True):  # lip speed from each track's own previous frame only
        motion = track.over(track.motion, 0, len(same))
        assert np.isnan(motion[span[0]]) and np.isfinite(motion[span[1:]]).mean() > 0.9
        assert track.first == span[0] and len(track.opening) == span[-1] - span[0] + 1  # only the frames it covers


@pytest.mark.parametrize("name", ["vr_face2.mp4", "lp_d20.mp4"])
def test_real_clips_without_cuts_are_one_shot(name):
    video = shared_file("media", "corpus", name)  # skips when ../shared is absent
    n = sum(len(c) for c in iter_frames(video, target_fps=25))
    assert find_cuts(video, CONFIG.shots, 25, n) == []
