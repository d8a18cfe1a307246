"""Data-processing pipeline, step by step, on generated fixtures (CPU, stand-in models with known behaviour).

The fixture folder (tests/data_processing_fixtures.py) holds a corrupt file, a file without audio, a
30 fps / 44.1 kHz clip, a two-shot clip with a hard cut, 3 s and 25 s clips, a clip whose face fades out,
a clip whose audio lags by 3 frames and a blurred clip. Steps 1-4 run once for the module; the face,
sync and quality steps run on small folders of their own.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import numpy as np
import pytest

from data_processing import run_pipeline
from data_processing.clips import shift_audio
from data_processing.layout import Layout
from data_processing.manifest import ManifestWriter, manifest_file, read_manifest
from data_processing.models import ModelUnavailableError
from data_processing.settings import load_settings, threshold_label
from data_processing.steps.segment import segment_ranges
from latentsync.utils.media import VideoReader, read_audio
from latentsync.utils.sharding import shard_of
from tests import data_processing_fixtures as fx

STAND_INS = [
    "models.syncnet.factory=tests.data_processing_fixtures:beat_syncnet",
    "models.face_detector.factory=tests.data_processing_fixtures:centre_face_boxes",
    "models.hyperiqa.factory=tests.data_processing_fixtures:sharpness_quality",
]
EARLY_STEPS = ["broken", "resample", "shot", "segment"]


def quiet(*_args) -> None:
    pass


def run(root, steps, overrides=(), **kwargs):
    cfg = load_settings(overrides=[*STAND_INS, *overrides])
    return run_pipeline(root / "raw", cfg, steps=steps, progress=False, log=quiet, **kwargs)


def records(root, step) -> dict:
    return read_manifest(root / "manifests" / step)


def md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def early(raw_dir, tmp_path_factory):
    """Steps 1-4 on a copy of the fixture folder; returns (root, input checksums before the run)."""
    root = tmp_path_factory.mktemp("early")
    shutil.copytree(raw_dir, root / "raw")
    before = {p.name: md5(p) for p in (root / "raw").iterdir()}
    run(root, EARLY_STEPS)
    return root, before


# ----------------------------------------------------------------------------------------------- pure logic


def test_segment_ranges_stay_within_bounds_and_cover_the_shot():
    assert segment_ranges(124, 125, 250) == []
    assert segment_ranges(125, 125, 250) == [(0, 125)]
    assert segment_ranges(625, 125, 250) == [(0, 209), (209, 417), (417, 625)]
    for frames in range(125, 3000, 7):
        parts = segment_ranges(frames, 125, 250)
        lengths = [e - s for s, e in parts]
        assert all(125 <= n <= 250 for n in lengths), (frames, lengths)
        assert parts[0][0] == 0 and parts[-1][1] == frames
        assert all(a[1] == b[0] for a, b in zip(parts, parts[1:], strict=False))
        assert max(lengths) - min(lengths) <= 1  # "split evenly"


def test_shift_audio_moves_by_whole_frames_and_keeps_length():
    audio = np.arange(6400, dtype=np.float32)
    late = shift_audio(audio, 2, fps=25, sample_rate=16000)  # delay by 2 frames = 1280 samples
    early = shift_audio(audio, -2, fps=25, sample_rate=16000)
    assert len(late) == len(early) == len(audio)
    assert np.all(late[:1280] == 0) and np.array_equal(late[1280:], audio[:-1280])
    assert np.array_equal(early[:-1280], audio[1280:]) and np.all(early[-1280:] == 0)


def test_manifest_ignores_and_trims_a_line_cut_short_by_a_crash(tmp_path):
    path = manifest_file(tmp_path, 0, 1)
    with ManifestWriter(path) as writer:
        writer.write({"item": "a.mp4", "status": "kept"})
    with open(path, "a") as handle:
        handle.write('{"item": "b.mp4", "sta')  # killed mid-write
    assert list(read_manifest(tmp_path)) == ["a.mp4"]
    with ManifestWriter(path) as writer:  # the next run trims the partial line before appending
        writer.write({"item": "b.mp4", "status": "dropped"})
        writer.write({"item": "a.mp4", "status": "error"})
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and all(line.endswith("}") for line in lines)
    assert read_manifest(tmp_path) == {"a.mp4": {"item": "a.mp4", "status": "error"},
                                       "b.mp4": {"item": "b.mp4", "status": "dropped"}}


def test_shards_partition_sources_stably():
    sources = [f"speaker{i}/video{j}.mp4" for i in range(20) for j in range(10)]
    for shards in (1, 3, 8):
        assignment = [shard_of(s, shards) for s in sources]
        assert assignment == [shard_of(s, shards) for s in sources]
        assert set(assignment) == set(range(shards))  # every shard gets work, none is outside the range


def test_threshold_names_the_sync_folder(tmp_path):
    assert threshold_label(3) == "3" and threshold_label(2.5) == "2.5"
    cfg = load_settings(overrides=["sync.min_confidence=2.5"])
    layout = Layout.create(tmp_path / "raw", None, cfg)
    assert layout.outputs["sync"] == tmp_path / "av_synced_2.5"
    with pytest.raises(ValueError, match="overlaps the input folder"):
        Layout.create(tmp_path / "raw", tmp_path / "raw", cfg)


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError, match="twice"):
        load_settings(overrides=["segment.min_seconds=5", "segment.max_seconds=7"])
    with pytest.raises(ValueError, match="256 or 512"):
        load_settings(overrides=["affine.resolution=300"])


# ----------------------------------------------------------------------------------------------- steps 1-4


def test_broken_videos_are_listed_with_reasons_and_the_input_is_untouched(early):
    root, before = early
    found = records(root, "broken")
    assert len(found) == len(fx.FIXTURES)
    dropped = {k: r["reason"] for k, r in found.items() if r["status"] == "dropped"}
    assert dropped == {"corrupt.mp4": "cannot_decode", "no_audio.mp4": "no_audio_stream"}
    assert all(r["detail"] for k, r in found.items() if k in dropped)
    assert {p.name: md5(p) for p in (root / "raw").iterdir()} == before  # nothing deleted or modified


def test_delete_broken_removes_only_broken_files(raw_dir, tmp_path):
    (tmp_path / "raw").mkdir()
    for name in ("corrupt.mp4", "no_audio.mp4", "short_3s.mp4"):
        shutil.copy(raw_dir / name, tmp_path / "raw" / name)
    run(tmp_path, ["broken"], overrides=["broken.delete=true"])
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["short_3s.mp4"]


def test_resample_gives_25_fps_and_16k_mono(early):
    root, _ = early
    found = records(root, "resample")
    assert len(found) == 7 and all(r["status"] == "kept" for r in found.values())
    for record in found.values():
        path = root / "resampled" / record["outputs"][0]
        reader = VideoReader(path)
        assert reader.fps == pytest.approx(25.0)
        assert fx.audio_facts(path) == (16000, 1)
        assert record["scores"]["video_copied"] == (record["scores"]["source_fps"] == 25)
    converted = VideoReader(root / "resampled" / "fps30_44k.mp4")
    assert len(converted) == 150  # 6 s at 25 fps (from 180 frames at 30 fps)
    assert len(read_audio(root / "resampled" / "fps30_44k.mp4")) == pytest.approx(6 * 16000, abs=1024)


def test_shot_detection_finds_the_hard_cut(early):
    root, _ = early
    found = records(root, "shot")
    two = found["two_shots.mp4"]
    assert two["outputs"] == ["two_shots_shot_001.mp4", "two_shots_shot_002.mp4"]
    assert abs(two["scores"]["cuts"][0] - 150) <= 1  # the cut is at 6.0 s
    lengths = [len(VideoReader(root / "shot" / name)) for name in two["outputs"]]
    assert sum(lengths) == 300 and all(abs(n - 150) <= 1 for n in lengths)
    for name, record in found.items():
        if name != "two_shots.mp4":
            assert record["scores"]["num_shots"] == 1, name  # the slow face fade-out is not a cut


def test_segments_last_5_to_10_seconds(early):
    root, _ = early
    found = records(root, "segment")
    assert found["short_3s_shot_001.mp4"]["status"] == "dropped"
    assert found["short_3s_shot_001.mp4"]["reason"] == "too_short"
    assert found["long_25s_shot_001.mp4"]["outputs"] == [f"long_25s_shot_001_{i:03d}.mp4" for i in range(3)]
    files = sorted((root / "segmented").glob("*.mp4"))
    assert len(files) == 9
    for path in files:
        reader = VideoReader(path)
        seconds = len(reader) / reader.fps
        assert 5.0 <= seconds <= 10.0, (path.name, seconds)
        assert len(read_audio(path)) / 16000 == pytest.approx(seconds, abs=0.05)
    long_frames = [len(VideoReader(root / "segmented" / f"long_25s_shot_001_{i:03d}.mp4")) for i in range(3)]
    assert sum(long_frames) == 625


def test_every_step_has_a_manifest_and_the_summary_counts_them(early):
    root, _ = early
    for step in EARLY_STEPS:
        for record in records(root, step).values():
            assert set(record) >= {"item", "source", "status", "reason", "detail", "outputs", "scores", "duration",
                                   "seconds"}
            assert (record["reason"] is None) == (record["status"] == "kept")
    summary = (root / "manifests" / "summary.md").read_text()
    assert "| segment | segmented | 8 | 7 | 1 | 0 | 9 |" in summary
    assert "cannot_decode 1, no_audio_stream 1" in summary


def test_dry_run_lists_work_and_writes_nothing(raw_dir, tmp_path):
    shutil.copytree(raw_dir, tmp_path / "raw")
    lines = []
    cfg = load_settings(overrides=STAND_INS)
    report = run_pipeline(tmp_path / "raw", cfg, dry_run=True, log=lines.append)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]
    assert [item for item, _ in report.plans[0].pending] == sorted(fx.FIXTURES)
    assert all(plan.waiting_on == "broken" for plan in report.plans[1:])
    assert any("corrupt.mp4" in line for line in lines)


def test_missing_checkpoint_is_reported_before_any_work(raw_dir, tmp_path):
    shutil.copytree(raw_dir, tmp_path / "raw")
    cfg = load_settings(overrides=["models.syncnet.checkpoint=/nowhere/syncnet_v2.model"])
    with pytest.raises(ModelUnavailableError, match=r"(?s)/nowhere/syncnet_v2.model.*checkpoints/README.md"):
        run_pipeline(tmp_path / "raw", cfg, progress=False, log=quiet)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]  # not even the first step ran


def test_cli_exits_with_a_message_on_missing_models(raw_dir, tmp_path, capsys):
    from data_processing.cli import main

    shutil.copytree(raw_dir, tmp_path / "raw")
    code = main(["--input_dir", str(tmp_path / "raw"), "--steps", "quality",
                 "models.hyperiqa.checkpoint=/nowhere/koniq_pretrained.pkl"])
    assert code == 2
    assert "HyperIQA" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------- steps 5-7


@pytest.fixture(scope="module")
def aligned(early, tmp_path_factory):
    """Step 5 on three of the segments (the face fade-out, the late audio, the 30 fps / 44.1 kHz one)."""
    root = tmp_path_factory.mktemp("aligned")
    (root / "raw").mkdir()
    (root / "segmented").mkdir()
    for name in ("face_partly_missing_shot_001_000.mp4", "audio_shift_shot_001_000.mp4", "fps30_44k_shot_001_000.mp4"):
        shutil.copy(early[0] / "segmented" / name, root / "segmented" / name)
    run(root, ["affine"])
    return root


def test_alignment_writes_256_px_25_fps_clips_with_audio(aligned):
    found = records(aligned, "affine")
    kept = [r for r in found.values() if r["status"] == "kept"]
    assert len(kept) == 2
    for record in kept:
        path = aligned / "affine_transformed" / record["item"]
        reader = VideoReader(path)
        assert (reader.info.width, reader.info.height, reader.fps) == (256, 256, 25.0)
        assert len(reader) == 150 and record["scores"]["frames_without_face"] == 0
        assert fx.audio_facts(path) == (16000, 1)
        assert len(read_audio(path)) / 16000 == pytest.approx(6.0, abs=0.05)
        assert record["scores"]["max_face_jitter"] < 0.25 and 40 < record["scores"]["face_size"] < 80


def test_alignment_drops_a_clip_whose_face_disappears(aligned):
    record = records(aligned, "affine")["face_partly_missing_shot_001_000.mp4"]
    assert record["status"] == "dropped" and record["reason"] == "face_missing"
    # The face fades out over 3.5-4.5 s: detection stops somewhere in frames 88-112 of 200.
    assert 85 <= record["scores"]["first_missing"] <= 115
    assert not (aligned / "affine_transformed" / "face_partly_missing_shot_001_000.mp4").exists()


def test_alignment_stability_limit_drops_jittery_faces(early, tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "segmented").mkdir()
    shutil.copy(early[0] / "segmented" / "two_shots_shot_002_000.mp4", tmp_path / "segmented")
    run(tmp_path, ["affine"], overrides=["affine.max_face_jitter=0.001"])  # the fixture face drifts ~2 px
    record = records(tmp_path, "affine")["two_shots_shot_002_000.mp4"]
    assert record["reason"] == "face_unstable" and "face jumps" in record["detail"]


def audio_lag(reference: np.ndarray, shifted: np.ndarray, max_lag: int) -> int:
    """Samples by which `shifted` lags `reference` (negative: it leads), from envelope cross-correlation."""
    a, b = np.abs(reference), np.abs(shifted)
    n = min(len(a), len(b)) - 2 * max_lag
    scores = [float(np.dot(a[max_lag:max_lag + n], b[max_lag + lag:max_lag + lag + n])) for lag in range(-max_lag, max_lag + 1)]
    return int(np.argmax(scores)) - max_lag


def test_sync_step_measures_the_offset_and_shifts_the_audio(aligned):
    run(aligned, ["sync"])
    found = records(aligned, "sync")
    assert set(found) == {"audio_shift_shot_001_000.mp4", "fps30_44k_shot_001_000.mp4"}  # face-less clip never got here
    shifted = found["audio_shift_shot_001_000.mp4"]
    # The fixture's audio lags its video by SHIFT_FRAMES; syncnet_python's sign: audio late -> negative offset.
    assert shifted["status"] == "kept" and shifted["scores"]["av_offset"] == -fx.SHIFT_FRAMES
    assert shifted["scores"]["confidence"] >= 3
    assert found["fps30_44k_shot_001_000.mp4"]["scores"]["av_offset"] == 0

    source = aligned / "affine_transformed" / "audio_shift_shot_001_000.mp4"
    output = aligned / "av_synced_3" / "audio_shift_shot_001_000.mp4"
    lag = audio_lag(read_audio(source), read_audio(output), max_lag=4000)
    assert abs(lag - (-fx.SHIFT_FRAMES * 640)) <= 40  # advanced by 3 frames = 1920 samples
    assert len(VideoReader(output)) == len(VideoReader(source)) == 150  # video untouched
    assert len(read_audio(output)) == pytest.approx(len(read_audio(source)), abs=1024)

    # Scored again with the evaluation code itself, the corrected clip is in sync.
    from data_processing.steps.sync import SyncFilter

    step = SyncFilter(load_settings(overrides=STAND_INS))
    step.setup()
    assert step.score(output)[0] == 0
    evaluation = step.evaluator(source)  # eval.syncnet.video_eval.SyncEvaluator: the same numbers as the step
    assert (evaluation.av_offset, round(evaluation.lse_c, 4)) == (-3, shifted["scores"]["confidence"])


def test_sync_step_drops_unsynced_and_far_offset_clips(tmp_path):
    folder = tmp_path / "affine_transformed"
    folder.mkdir(parents=True)
    (tmp_path / "raw").mkdir()
    fx.aligned_like_clip(folder / "unrelated_audio.mp4", video_seed=1, audio_seed=2)
    fx.aligned_like_clip(folder / "late_by_9.mp4", video_seed=3, delay_frames=9)
    run(tmp_path, ["sync"])
    found = records(tmp_path, "sync")
    assert found["unrelated_audio.mp4"]["reason"] == "low_sync_confidence"
    assert found["unrelated_audio.mp4"]["scores"]["confidence"] < 3
    assert found["late_by_9.mp4"]["reason"] == "offset_out_of_range"
    assert found["late_by_9.mp4"]["scores"]["av_offset"] == -9
    assert not list((tmp_path / "av_synced_3").glob("*.mp4"))


def test_quality_step_keeps_sharp_and_drops_blurred_clips(tmp_path):
    folder = tmp_path / "av_synced_3"
    folder.mkdir(parents=True)
    (tmp_path / "raw").mkdir()
    fx.aligned_like_clip(folder / "sharp.mp4", seconds=2.0)
    fx.aligned_like_clip(folder / "soft.mp4", seconds=2.0, blur_sigma=5.0)
    run(tmp_path, ["quality"])
    found = records(tmp_path, "quality")
    assert found["sharp.mp4"]["status"] == "kept" and found["sharp.mp4"]["scores"]["quality"] >= 40
    assert found["soft.mp4"]["reason"] == "low_quality" and found["soft.mp4"]["scores"]["quality"] < 40
    assert md5(tmp_path / "high_visual_quality" / "sharp.mp4") == md5(folder / "sharp.mp4")


def test_quality_resolution_filter_uses_the_face_size_of_step_5(aligned):
    run(aligned, ["sync"])  # no-op when the sync test ran first (resumed from its manifest)
    run(aligned, ["quality"], overrides=["quality.min_face_size=100"])
    found = records(aligned, "quality")
    assert {r["reason"] for r in found.values()} == {"low_resolution"}  # fixture faces are ~58 px
    shutil.rmtree(aligned / "manifests" / "quality")
    run(aligned, ["quality"], overrides=["quality.min_face_size=40"])
    assert {r["status"] for r in records(aligned, "quality").values()} == {"kept"}


# ----------------------------------------------------------------------------------------------- slow


@pytest.mark.slow
def test_full_pipeline_keeps_exactly_the_good_clips(raw_dir, tmp_path):
    shutil.copytree(raw_dir, tmp_path / "raw")
    report = run(tmp_path, None)
    drops = {(r["source"], step, r["reason"]) for step in report.layout.outputs
             for r in records(tmp_path, step).values() if r["status"] != "kept"}
    expected = {(name, *fate.split(":")) for name, fate in fx.FIXTURES.items() if fate != "kept"}
    assert drops == expected
    final = sorted(p.name for p in (tmp_path / "high_visual_quality").glob("*.mp4"))
    assert final == ["audio_shift_shot_001_000.mp4", "fps30_44k_shot_001_000.mp4",
                     *[f"long_25s_shot_001_{i:03d}.mp4" for i in range(3)],
                     "two_shots_shot_001_000.mp4", "two_shots_shot_002_000.mp4"]
    for name in final:
        reader = VideoReader(tmp_path / "high_visual_quality" / name)
        assert (reader.info.width, reader.info.height, reader.fps) == (256, 256, 25.0)
        assert 5.0 <= len(reader) / 25 <= 10.0 and fx.audio_facts(tmp_path / "high_visual_quality" / name) == (16000, 1)
    assert records(tmp_path, "sync")["audio_shift_shot_001_000.mp4"]["scores"]["av_offset"] == -fx.SHIFT_FRAMES
    summary = (tmp_path / "manifests" / "summary.md").read_text()
    assert "| quality | high_visual_quality | 8 | 7 | 1 | 0 | 7 |" in summary


@pytest.mark.slow
def test_alignment_at_512(early, tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "segmented").mkdir()
    shutil.copy(early[0] / "segmented" / "two_shots_shot_001_000.mp4", tmp_path / "segmented")
    run(tmp_path, ["affine"], overrides=["affine.resolution=512"])
    reader = VideoReader(tmp_path / "affine_transformed" / "two_shots_shot_001_000.mp4")
    assert (reader.info.width, reader.info.height, len(reader)) == (512, 512, 150)


@pytest.mark.slow
def test_real_model_classes_load_from_checkpoint_files(tmp_path):
    """Random-weight SyncNet and HyperIQA of the official sizes, saved in the official file formats."""
    import torch

    from eval.hyper_iqa import KONIQ_ARGS, HyperIQAScorer, HyperNet
    from eval.syncnet.model import S

    torch.manual_seed(0)
    torch.save(S().state_dict(), tmp_path / "syncnet_v2.model")
    torch.save(HyperNet(**KONIQ_ARGS).state_dict(), tmp_path / "koniq_pretrained.pkl")
    for folder in ("raw", "affine_transformed"):
        (tmp_path / folder).mkdir()
    fx.aligned_like_clip(tmp_path / "affine_transformed" / "face.mp4", seconds=2.5)
    checkpoints = [f"models.syncnet.checkpoint={tmp_path / 'syncnet_v2.model'}", "models.syncnet.factory=null",
                   f"models.hyperiqa.checkpoint={tmp_path / 'koniq_pretrained.pkl'}", "models.hyperiqa.factory=null",
                   "sync.min_confidence=-1000", "sync.max_abs_offset=15"]  # random weights: keep whatever they say
    run(tmp_path, ["sync", "quality"], overrides=checkpoints)
    sync = records(tmp_path, "sync")["face.mp4"]
    assert sync["status"] == "kept" and isinstance(sync["scores"]["av_offset"], int)
    quality = records(tmp_path, "quality")["face.mp4"]
    assert quality["status"] in ("kept", "dropped") and quality["reason"] in (None, "low_quality")
    direct = HyperIQAScorer(tmp_path / "koniq_pretrained.pkl").score_video(tmp_path / "av_synced_-1000" / "face.mp4")
    assert quality["scores"]["quality"] == pytest.approx(direct, abs=1e-3)


def test_errors_are_recorded_and_retried_only_on_request(tmp_path):
    folder = tmp_path / "av_synced_3"
    folder.mkdir(parents=True)
    (tmp_path / "raw").mkdir()
    fx.aligned_like_clip(folder / "clip.mp4", seconds=1.0)
    report = run(tmp_path, ["quality"], overrides=["models.hyperiqa.factory=tests.data_processing_fixtures:failing_quality"])
    record = records(tmp_path, "quality")["clip.mp4"]
    assert record["status"] == "error" and "scorer exploded" in record["detail"]
    assert report.summary[0].errors == 1
    assert not run(tmp_path, ["quality"]).plans[0].pending  # an error counts as done...
    run(tmp_path, ["quality"], retry_errors=True)  # ...until asked to retry
    assert records(tmp_path, "quality")["clip.mp4"]["status"] == "kept"


def marker_clip(path, timestamps_expr: str, frames: int = 50) -> None:
    """Frames of uniform grey 16 + 4 i (the index survives H.264), given presentation times by `timestamps_expr`."""
    from latentsync.utils.media import ffmpeg_exe

    greys = np.repeat((16 + 4 * np.arange(frames)).astype(np.uint8), 32 * 32 * 3)
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "32x32",
                    "-r", "25", "-i", "-", "-f", "lavfi", "-i", "sine=duration=8", "-vf", f"setpts='{timestamps_expr}'",
                    "-fps_mode", "vfr", "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv444p", "-c:a", "aac",
                    "-shortest", str(path)], input=greys.tobytes(), check=True)


def markers(frames: np.ndarray) -> list[int]:
    return [int(round((f.mean() - 16) / 4)) for f in frames]


def test_resample_converts_variable_frame_rate_by_presentation_time(tmp_path):
    from tests.test_media import ffmpeg_fps_choice

    (tmp_path / "raw").mkdir()
    clip = tmp_path / "raw" / "vfr.mp4"
    marker_clip(clip, "if(lt(N,25),N/25,1+(N-25)*0.12)/TB")  # 25 fps for 1 s, then 8.3 fps
    run(tmp_path, ["broken", "resample"])
    record = records(tmp_path, "resample")["vfr.mp4"]
    assert record["status"] == "kept" and record["scores"]["video_copied"] is False
    out = tmp_path / "resampled" / record["outputs"][0]
    decoded = np.concatenate(list(VideoReader(out).iter_chunks(32)))
    assert markers(decoded) == markers(ffmpeg_fps_choice(clip))  # every frame: the one ffmpeg's fps=25 picks
    assert len(read_audio(out)) / 16000 == pytest.approx(len(decoded) / 25, abs=1 / 25)
