"""Batch inference + metrics table, with a stand-in lip-sync function and random-weight SyncNet."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from eval.fvd import FVDSampleSizeWarning
from eval.inference_videos import evaluate_batch, pair_inputs, read_fileslist, render, run_inference
from tests.helpers import shared_file, write_video
from tests.test_eval_fvd import StandInI3D


def test_pairing():
    videos = [f"v{i}.mp4" for i in range(6)]
    audios = [f"a{i}.wav" for i in range(4)]
    pairs = pair_inputs(videos, audios, seed=42)
    assert len(pairs) == 4 and pairs == pair_inputs(videos, audios, seed=42)
    assert {a for _, a in pairs} == set(audios) and {v for v, _ in pairs} <= set(videos)
    assert pairs != pair_inputs(videos, audios, seed=7)
    assert pair_inputs(videos, audios, seed=0, pairing="zip") == list(zip(videos, audios, strict=False))


def test_fileslist(tmp_path):
    (tmp_path / "l.txt").write_text("a.mp4\n\n# comment\nb.mp4\n")
    assert read_fileslist(tmp_path / "l.txt") == ["a.mp4", "b.mp4"]
    (tmp_path / "e.txt").write_text("\n")
    with pytest.raises(ValueError, match="lists no files"):
        read_fileslist(tmp_path / "e.txt")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    from latentsync.utils.media import VideoReader, read_audio, write_wav

    folder = tmp_path_factory.mktemp("inputs")
    demo = shared_file("media", "demo1_video.mp4")
    audio = read_audio(demo)
    reader = VideoReader(demo, target_fps=25)
    videos, audios = [], []
    for k, start in enumerate((0, 100)):
        frames = np.stack([cv2.resize(f[400:940, 270:810], (360, 360)) for f in reader.get_frames(range(start, start + 60))])
        wav = folder / f"a{k}.wav"
        write_wav(wav, audio[start * 640 : (start + 60) * 640], 16000)
        videos.append(str(write_video(folder / f"v{k}.mp4", [frames], 25, audio_path=wav)))
        audios.append(str(wav))
    return videos, audios


@pytest.mark.needs_shared
def test_batch_run_scores_outputs_and_real_videos(inputs, tmp_path):
    from eval.syncnet.video_eval import SyncEvaluator
    from latentsync.utils.media import VideoReader

    videos, audios = inputs
    calls = []

    def fake_lipsync(video, audio, out):  # "lip sync" = the input frames with the new audio
        calls.append((video, audio))
        if "a1" in audio and "v0" in video:
            raise RuntimeError("simulated failure")
        write_video(out, [VideoReader(video).get_frames(range(60))], 25, audio_path=audio)

    pairs = [(videos[0], audios[0]), (videos[1], audios[1]), (videos[0], audios[1])]
    out_dir = tmp_path / "results"
    records = run_inference(pairs, out_dir, fake_lipsync)
    assert [r["status"] for r in records] == ["generated", "generated", "failed"]
    assert "simulated failure" in records[2]["error"]
    assert records[0]["video"] == "v0__a0.mp4" and (out_dir / "v0__a0.mp4").is_file()

    again = run_inference(pairs[:1], out_dir, fake_lipsync)  # resume: existing outputs are not regenerated
    assert again[0]["status"] == "existing" and len(calls) == 3

    evaluator = SyncEvaluator.from_config(detector="mediapipe", width_divisor=4, load_weights=False)
    with pytest.warns(FVDSampleSizeWarning):  # 2 videos per set
        summary = evaluate_batch(records, evaluator, with_real=True, i3d=StandInI3D())
    scored = [r for r in summary["videos"] if "lse_c" in r]
    assert len(scored) == 2
    for record in scored:
        assert isinstance(record["av_offset"], int) and record["lse_d"] > 0 and record["lse_c"] >= 0
    assert summary["mean"]["lse_c"] == pytest.approx(np.mean([r["lse_c"] for r in scored]))
    assert summary["real"]["video"] == "real videos" and summary["real"]["lse_d"] > 0
    assert summary["mean"]["fvd"] is not None and summary["mean"]["fvd"] >= 0 and summary["fvd_note"] is None

    table = render(summary)
    assert "v0__a0.mp4" in table and "real videos" in table and "| mean" in table and "failed" in table
    json.dumps(summary)  # serialisable as results.json


def test_missing_syncnet_weights_exit_cleanly(tmp_path, capsys):
    from eval.inference_videos import main

    (tmp_path / "v.txt").write_text("v.mp4\n")
    (tmp_path / "a.txt").write_text("a.wav\n")
    code = main(["--video_fileslist", str(tmp_path / "v.txt"), "--audio_fileslist", str(tmp_path / "a.txt"),
                 "--output_dir", str(tmp_path / "out"), "--syncnet_model", str(tmp_path / "absent.model")])
    assert code == 2 and "SyncNet checkpoint not found" in capsys.readouterr().err
