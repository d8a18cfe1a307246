"""Choosing the face to lip-sync: `speaker` (whose mouth moves with the video's own audio), index, position.

The tiny random U-Net rewrites the mouth of whichever face is chosen, so "edited vs untouched" is measured as
the change between input and output inside each face's box.
"""

from __future__ import annotations

import numpy as np
import pytest

import latentsync
import scripts.inference as cli
from latentsync.api import LipsyncOptions, build_pipeline
from latentsync.faces.all_faces import MouthTrack, lip_speed, lips_in_face_frame
from latentsync.faces.detector import FaceDetector, box_iou
from latentsync.faces.settings import load_faces_config
from latentsync.faces.speaker import (
    choose_speaker,
    find_speaker,
    lagged_correlation,
    score_face,
    speech_band_level,
    speech_envelope,
)
from tests.helpers import shared_file
from tests.inference_fixtures import (
    cli_args,
    decode_all,
    region_change,
    tiny_options,
    two_face_clip,
    voice_over_clip,
    with_audio,
)

SPEAKER = load_faces_config().speaker


@pytest.fixture(scope="module")
def bundle(ckpts):
    return build_pipeline(LipsyncOptions(**tiny_options(ckpts)))


@pytest.fixture(scope="module")
def detector():
    with FaceDetector() as det:
        yield det


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """The same two generated people; in one clip the left one's speech is the audio, in the other the right one's."""
    folder = tmp_path_factory.mktemp("two_faces")
    return {k: two_face_clip(folder, f"speaker{k}", speaking=k) for k in (0, 1)}


def run(bundle, ckpts, video, audio, out, **overrides):
    return latentsync.lipsync(str(video), str(audio), str(out), pipeline=bundle,
                              **tiny_options(ckpts, **overrides))


def changes(video, out, boxes) -> list[float]:
    frames_in, frames_out = decode_all(video), decode_all(out)
    return [region_change(frames_in, frames_out, box) for box in boxes]


def test_envelope_is_log_rms_per_frame():
    rate, fps = 16000, 25
    samples = np.concatenate([np.zeros(rate // 2), 0.5 * np.ones(rate // 2)]).astype(np.float32)
    env = speech_envelope(samples, rate, fps, num_frames=30, floor=1e-3)
    assert np.allclose(env[:12], np.log(1e-3)) and np.allclose(env[13:25], np.log(0.5))
    assert np.allclose(env[25:], np.log(1e-3))  # past the end of the audio: silence


def test_band_level_hears_the_voice_band_only():
    """A 1 kHz tone (inside 300-3000 Hz) gives its own RMS; hum and hiss of the same RMS count far less."""
    rate, fps, frames = 16000, 25, 25
    t = np.arange(rate) / rate
    band, floor = SPEAKER.speech_band_hz, 1e-4

    def level(tone):
        return speech_band_level(tone, rate, fps, frames, band, floor)

    voice, hum, hiss = (0.5 * np.sin(2 * np.pi * f * t) for f in (1000, 50, 6000))
    assert np.allclose(level(voice), np.log(0.5 / np.sqrt(2)), atol=0.05)
    assert (level(hum) < level(voice) - 3).all() and (level(hiss) < level(voice) - 3).all()
    assert np.allclose(speech_band_level(np.zeros(rate), rate, fps, frames, band, floor), np.log(floor))


def _face_points(opening: float, angle: float = 0.0, scale: float = 1.0, shift=(0.0, 0.0)) -> np.ndarray:
    """A stick face in 68-point numbering (eyes, nose bridge, inner lips) turned, zoomed and moved in the image."""
    lm = np.zeros((68, 2))
    lm[[36, 39, 42, 45]] = [[-40, 0], [-15, 0], [15, 0], [40, 0]]
    lm[27:31] = [[0, 5], [0, 15], [0, 25], [0, 35]]
    lm[60:68] = [[-20, 60], [-10, 60 - opening], [0, 60 - opening], [10, 60 - opening], [20, 60],
                 [10, 60 + opening], [0, 60 + opening], [-10, 60 + opening]]
    c, s = np.cos(angle), np.sin(angle)
    return scale * lm @ np.array([[c, s], [-s, c]]) + np.asarray(shift)


def test_lip_speed_counts_the_lips_not_the_head():
    lips, anchors = load_faces_config().lip_frame("face_alignment")
    still = lips_in_face_frame(_face_points(3), lips, anchors)
    moved = lips_in_face_frame(_face_points(3, angle=0.3, scale=1.7, shift=(120, -40)), lips, anchors)
    assert lip_speed(still, moved) < 1e-9  # a head turn in the image plane, a zoom and a move: no lip motion
    opened = lips_in_face_frame(_face_points(11, angle=0.3, scale=1.7, shift=(120, -40)), lips, anchors)
    assert lip_speed(still, opened) > 0.05  # 8 px of opening on a 55 px eye distance, however the head moved


def test_mouth_motion_adds_opening_speed_and_lip_speed_alike():
    opening = np.array([0.1, 0.2, 0.1, 0.3, 0.3])
    only = MouthTrack(1, np.zeros((5, 4)), opening)
    assert np.allclose(only.mouth_motion(), np.abs(np.gradient(opening)))
    lips = np.array([np.nan, 2.0, 4.0, 2.0, 6.0])
    both = MouthTrack(1, np.zeros((5, 4)), opening, motion=lips).mouth_motion()
    expected = np.abs(np.gradient(opening)) / np.std(np.abs(np.gradient(opening))) + lips / np.nanstd(lips)
    assert np.isnan(both[0]) and np.allclose(both[1:], expected[1:])
    assert np.allclose(both[2:4], MouthTrack(1, np.zeros((5, 4)), opening, motion=lips * 100).mouth_motion()[2:4])


def test_a_track_keeps_only_the_frames_it_covers_and_scores_as_over_the_whole_video():
    """A track seen in frames 40-79 of a 120-frame video holds 40 rows (a long video with many shots has many
    tracks: none may cost the whole video's length), and reads over any window as full-length arrays would."""
    rng = np.random.default_rng(3)
    n, first, rows = 120, 40, 40
    boxes, opening, motion = rng.random((rows, 4)), rng.random(rows), rng.random(rows)
    late = MouthTrack(7, boxes, opening, motion=motion, first=first)
    full_opening, full_motion, full_boxes = np.full(n, np.nan), np.full(n, np.nan), np.full((n, 4), np.nan)
    full_opening[first:first + rows], full_motion[first:first + rows], full_boxes[first:first + rows] = \
        opening, motion, boxes
    full = MouthTrack(7, full_boxes, full_opening, motion=full_motion)
    for start, end in ((0, n), (30, 50), (45, 55), (70, 110), (0, 10)):
        assert np.array_equal(late.mouth_motion(start, end), full.mouth_motion(start, end), equal_nan=True)
        assert np.array_equal(late.over(late.boxes, start, end), full_boxes[start:end], equal_nan=True)
    assert [late.seen_in(a, b) for a, b in ((0, 40), (0, 41), (79, 80), (80, 120))] == [False, True, True, False]
    envelope = rng.random(n)
    mine, theirs = score_face(late, envelope, SPEAKER, 30, 100), score_face(full, envelope, SPEAKER, 30, 100)
    assert np.isfinite(mine.score) and np.isfinite(mine.threshold) and mine.frames == rows
    assert (mine.score, mine.lag, mine.frames, mine.threshold) == (theirs.score, theirs.lag, theirs.frames,
                                                                   theirs.threshold)
    assert np.array_equal(mine.box, theirs.box)


def _activity(rng, n):
    """On/off speech activity with pauses, like real talk."""
    active, t = np.zeros(n), 0
    while t < n:
        length = int(rng.integers(4, 15))
        active[t:t + length] = rng.uniform(0.5, 1.0) if rng.random() < 0.6 else 0.0
        t += length
    return active


def _mouth_moving_with(activity, lag):
    """A mouth opening and closing at 4 syllables a second while `activity` is on, `lag` frames before the sound."""
    syllables = (1 + np.sin(2 * np.pi * np.arange(len(activity)) / 6)) / 2
    return 0.05 + 0.03 * np.roll(activity, -lag) * syllables


def test_the_face_moving_with_the_audio_wins_at_its_lag():
    rng = np.random.default_rng(3)
    n = 150
    speech, other = _activity(rng, n), _activity(rng, n)
    envelope = np.log(np.maximum(speech * 0.3, 1e-3))
    boxes = np.zeros((n, 4))
    faces = [MouthTrack(1, boxes, _mouth_moving_with(other, 2)), MouthTrack(2, boxes, _mouth_moving_with(speech, 2))]
    short = np.full(n, np.nan)
    short[:10] = 0.05
    faces.append(MouthTrack(3, boxes, short))  # seen in 10 frames only
    choice = choose_speaker(faces, envelope, SPEAKER)
    assert choice.chosen.track_id == 2 and choice.chosen.lag == 2
    assert choice.chosen.score > 0.5 and choice.candidates[1].score < choice.chosen.score - 0.3
    lines = choice.lines()
    assert len(lines) == 4 and "too few to score" in lines[2] and "lip-syncing track 2" in lines[3]
    r, lag, used = lagged_correlation(np.arange(20.0), np.arange(20.0) - 3, (0, 5), 10)
    assert (round(r, 6), used) == (1.0, 20)


@pytest.mark.parametrize("speaking", [0, 1])
def test_speaker_pass_finds_the_face_whose_mouth_follows_the_audio(clips, detector, speaking):
    video, _, boxes = clips[speaking]
    choice = find_speaker(video, detector, 25, 100)
    assert len(choice.candidates) == 2
    chosen = choice.chosen.box
    assert box_iou(chosen, np.asarray(boxes[speaking], float)) > box_iou(chosen, np.asarray(boxes[1 - speaking], float))
    assert choice.chosen.score > choice.candidates[1].score + 0.1
    assert np.isfinite(choice.boxes).all(axis=1).mean() > 0.9  # the chosen face is followed through the clip


def test_speaker_edits_only_the_speaking_face(bundle, ckpts, clips, tmp_path, capsys):
    video, wav, boxes = clips[1]  # the right one speaks: not the leftmost, and both faces are the same size
    out = tmp_path / "speaker.mp4"
    result = run(bundle, ckpts, video, wav, out, face_choice="speaker")
    left, right = changes(video, out, boxes)
    assert right >= 4 * left, (left, right)
    assert result.frames_with_face == result.num_frames
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("face choice speaker")]
    assert len(lines) == 3 and "score" in lines[0] and "lip-syncing track" in lines[2], lines


def test_a_run_from_the_reuse_cache_names_the_face_it_replays(bundle, ckpts, clips, tmp_path, capsys):
    """The second run on a video replays the first one's face pass (no speaker pass) and says its shot table
    again, so every run's log names the face it lip-syncs."""
    video, wav, _ = clips[1]
    cached = dict(face_choice="speaker", cache=True, cache_dir=str(tmp_path / "cache"))
    run(bundle, ckpts, video, wav, tmp_path / "first.mp4", **cached)
    first = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith(("face choice speaker", "shot "))]
    result = run(bundle, ckpts, video, wav, tmp_path / "second.mp4", **cached)
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert result.prepared_from_cache
    assert "replayed from the reuse cache" in err[0] and err[1:] == first and len(first) == 4, err


def test_no_audio_track_falls_back_to_tracked(bundle, ckpts, tmp_path, capsys):
    video, wav, _ = two_face_clip(tmp_path, "silent_video", speaking=0, seconds=1.0, with_audio=False)
    result = run(bundle, ckpts, video, wav, tmp_path / "out.mp4", face_choice="speaker")
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("warning:") and "no" in err[0] and "tracked" in err[0], err
    assert result.frames_with_face == result.num_frames == 25


def test_index_and_position_choose_the_face(ckpts, clips, tmp_path):
    video, wav, boxes = clips[0]
    for name, extra, edited in (("index", ["--face_index", "1"], 1),
                                ("position", ["--face_choice", "position", "--face_position",
                                              f"{(boxes[0][0] + boxes[0][2]) / 2},{(boxes[0][1] + boxes[0][3]) / 2}"], 0)):
        out = tmp_path / f"{name}.mp4"
        assert cli.main(cli_args(ckpts, video, wav, out, *extra)) == cli.EXIT_OK
        change = changes(video, out, boxes)
        assert change[edited] >= 4 * change[1 - edited], (name, change)


def test_batch_rows_choose_their_own_face(ckpts, clips, tmp_path):
    import json

    video, wav, boxes = clips[0]
    rows = [{"video": str(video), "audio": str(wav), "output": str(tmp_path / "left.mp4"), "face_choice": "index",
             "face_index": 0},
            {"video": str(video), "audio": str(wav), "output": str(tmp_path / "right.mp4"), "face_choice": "index",
             "face_index": 1}]
    batch = tmp_path / "jobs.json"
    batch.write_text(json.dumps(rows))
    argv = cli_args(ckpts, video, wav, "unused.mp4", "--face_choice", "largest")  # the rows override it
    for flag in ("--video_path", "--audio_path", "--video_out_path"):
        del argv[argv.index(flag) : argv.index(flag) + 2]
    assert cli.main(argv + ["--batch", str(batch)]) == cli.EXIT_OK
    left, right = changes(video, tmp_path / "left.mp4", boxes), changes(video, tmp_path / "right.mp4", boxes)
    assert left[0] >= 4 * left[1] and right[1] >= 4 * right[0], (left, right)


@pytest.mark.slow
@pytest.mark.needs_shared
def test_two_real_people_speaker_edits_the_one_heard(bundle, ckpts, detector, tmp_path):
    """demo1 beside a later part of itself, with the left part's own audio: only the left face is lip-synced."""
    from tools.make_two_person_clip import make_two_person_clip

    video = make_two_person_clip(shared_file("media", "demo1_video.mp4"), tmp_path / "two_people.mp4")
    out = tmp_path / "out.mp4"
    run(bundle, ckpts, video, video, out, face_choice="speaker")  # lip-synced to its own audio
    faces = sorted(detector.detect_all(decode_all(video)[0]), key=lambda f: f.box[0])
    assert len(faces) == 2
    left, right = changes(video, out, [f.box for f in faces])
    assert left >= 4 * right, (left, right)


def test_speaker_set_in_the_faces_config_is_honoured(tmp_path):
    from latentsync.faces.choice import FaceChoice, resolve_face_choice
    from latentsync.utils.progress import RunProgress

    video, _, _ = two_face_clip(tmp_path, "no_audio", speaking=0, seconds=1.0, with_audio=False)
    said = []
    with FaceDetector(config=load_faces_config(overrides=["detector.choice=speaker"])) as configured:
        settings = resolve_face_choice(None, None, None, str(video), configured, 25, 25, RunProgress(False),
                                       say=said.append)
    assert (settings.choice, settings.guide_boxes, settings.cuts) == ("tracked", None, None)
    assert len(said) == 1 and said[0].startswith("warning:")
    with FaceDetector() as default:
        assert (resolve_face_choice(None, None, None, str(video), default, 25, 25, RunProgress(False))
                == FaceChoice.configured(default.config))


def test_a_voice_no_visible_face_speaks_stops_the_run_and_silence_falls_back(ckpts, clips, detector, tmp_path,
                                                                               capsys):
    """A voice-over (speech nobody on screen speaks): `speaker` edits nobody and says what to use instead; a silent
    track cannot tell who speaks, so `tracked` takes over (with one warning)."""
    from latentsync.errors import NoSpeakerError
    from latentsync.faces.choice import resolve_face_choice
    from latentsync.utils.progress import RunProgress

    video, _, _ = clips[0]
    dubbed = voice_over_clip(video, tmp_path)  # a third person's voice
    said = []
    with pytest.raises(NoSpeakerError, match="--face_choice tracked") as stop:
        resolve_face_choice("speaker", None, None, str(dubbed), detector, 25, 100, RunProgress(False), say=said.append)
    nobody = stop.value.passthrough  # what the app's preview shows instead: every frame passes through
    assert nobody.edits_nobody and nobody.guide_boxes.shape == (100, 4) and nobody.cuts == ()
    assert [ln for ln in said if ln.startswith("shot 1/1") and "nobody speaks" in ln], said
    out = tmp_path / "out.mp4"  # the command line: a user error (exit 2), no output left behind
    assert cli.main(cli_args(ckpts, dubbed, tmp_path / "voice_over.wav", out, "--face_choice", "speaker")) \
        == cli.EXIT_BAD_INPUT
    assert not out.exists() and "nobody's on screen" in capsys.readouterr().err

    silent = with_audio(video, np.zeros(4 * 16000, np.float32), 16000, tmp_path, "silent")
    said = []
    chosen = resolve_face_choice("speaker", None, None, str(silent), detector, 25, 100, RunProgress(False),
                                 say=said.append)
    assert chosen.choice == "tracked" and chosen.guide_boxes is None
    assert [ln for ln in said if ln.startswith("warning:") and "silence" in ln and "tracked" in ln], said
