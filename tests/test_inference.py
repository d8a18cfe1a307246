"""End-to-end lip-sync inference with tiny random models on self-made face clips (CPU).

The models are random, so the mouth region is garbage — these tests check the machinery: lengths, frame
order, pass-through of face-less frames, untouched pixels outside the face, streams, errors, exit codes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import latentsync
from latentsync.api import InputError, LipsyncOptions, build_pipeline
from latentsync.errors import NoFaceError
from latentsync.pipelines.frame_schedule import source_frame_indices
from latentsync.utils.media import describe_streams, probe_video
from scripts import inference as cli
from tests.helpers import shared_file, write_video
from tests.inference_fixtures import audio_seconds, cli_args, decode_all, face_clip, source_indices, tiny_options


@pytest.fixture(scope="module")
def bundle(ckpts):
    return build_pipeline(LipsyncOptions(**tiny_options(ckpts)))


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    return {
        "two_seconds": face_clip(folder, "two_seconds", 2.0),
        "short_video_long_audio": face_clip(folder, "short", 0.6, audio_seconds=1.5),
        "thirty_fps": face_clip(folder, "thirty", 1.2, fps=30),
        "gaps": face_clip(folder, "gaps", 1.6, blank_frames=tuple(range(8, 20))),
    }


def run(bundle, ckpts, video, audio, out, **overrides):
    return latentsync.lipsync(str(video), str(audio), str(out), pipeline=bundle, **tiny_options(ckpts, **overrides))


def face_region(frame_shape, frames_in: np.ndarray) -> np.ndarray:
    """Pixels that belong to the face area of the clip (where the astronaut is drawn), as a boolean mask."""
    background = np.median(frames_in[:, -5:, -5:].reshape(-1, 3), axis=0)
    return (np.abs(frames_in[0].astype(int) - background).sum(-1) > 30)


def test_end_to_end_on_self_made_clip(bundle, ckpts, clips, tmp_path):
    video, audio = clips["two_seconds"]
    out = tmp_path / "out.mp4"
    result = run(bundle, ckpts, video, audio, out)
    info, streams = probe_video(out), describe_streams(out)
    assert (streams.video_codec, streams.audio_codec) == ("h264", "aac")
    assert info.fps == 25 and (info.width, info.height) == (240, 320)
    assert abs(info.num_frames / 25 - audio_seconds(audio)) <= 1 / 25
    assert result.frames_with_face == result.num_frames == info.num_frames

    frames_in, frames_out = decode_all(video), decode_all(out)
    diff = np.abs(frames_out.astype(int) - frames_in.astype(int)).max(-1)  # (n, h, w)
    # The face is pasted back through a feathered mask around the aligned crop; far from it nothing changes.
    changed = (diff > 12).any(0)
    ys, xs = np.nonzero(changed)
    assert changed.sum() > 200, "the mouth region did not change"
    box_h, box_w = ys.max() - ys.min(), xs.max() - xs.min()
    assert box_h < 0.8 * 320 and box_w < 0.9 * 240, "changes must stay inside the face area"
    outside = np.ones_like(changed)
    outside[max(0, ys.min() - 10): ys.max() + 10, max(0, xs.min() - 10): xs.max() + 10] = False
    assert diff[:, outside].mean() < 1.5 and np.percentile(diff[:, outside], 99.9) <= 12
    assert source_indices(frames_out) == list(range(len(frames_out)))


@pytest.mark.parametrize("mode", ["pingpong", "loop", "cut_to_shortest", "silence"])
def test_audio_longer_than_video(bundle, ckpts, clips, tmp_path, mode):
    video, audio = clips["short_video_long_audio"]  # 15 video frames, 1.5 s of audio
    out = tmp_path / f"{mode}.mp4"
    run(bundle, ckpts, video, audio, out, length_mode=mode)
    frames = decode_all(out)
    expected_len = 15 if mode == "cut_to_shortest" else int(np.ceil(1.5 * 25))
    assert len(frames) == expected_len
    assert source_indices(frames) == source_frame_indices(expected_len, 15, mode).tolist()
    if mode == "silence":  # the audio is longer: the default behaviour (pingpong)
        assert source_indices(frames) == source_frame_indices(expected_len, 15, "pingpong").tolist()
    assert abs(describe_streams(out).duration - expected_len / 25) < 0.1


def test_audio_shorter_than_video(bundle, ckpts, clips, tmp_path):
    video, _ = clips["two_seconds"]
    _, short_audio = clips["short_video_long_audio"]
    from latentsync.utils.media import read_audio, write_wav

    short = tmp_path / "short.wav"
    write_wav(short, read_audio(short_audio)[:12000], 16000)  # 0.75 s
    out = tmp_path / "short_audio.mp4"
    run(bundle, ckpts, video, short, out)
    frames = decode_all(out)
    assert len(frames) == 19 and source_indices(frames) == list(range(19))


def test_silence_keeps_a_longer_video_whole(bundle, ckpts, tmp_path):
    """8 s of video with 3 s of audio: 8.00 s out, every source frame in order, audio padded with silence."""
    from latentsync.utils.media import read_audio

    video, audio = face_clip(tmp_path, "eight", 8.0, audio_seconds=3.0)
    out = tmp_path / "silence.mp4"
    result = run(bundle, ckpts, video, audio, out, length_mode="silence")
    frames = decode_all(out)
    assert result.num_frames == len(frames) == 200 and probe_video(out).num_frames / 25 == 8.0
    assert source_indices(frames) == list(range(200))
    assert describe_streams(out).audio_codec == "aac"
    track = read_audio(out)
    assert abs(len(track) / 16000 - 8.0) < 0.03, len(track) / 16000  # the audio lasts as long as the video
    assert np.abs(track[16000:40000]).max() > 0.05 and np.abs(track[-3 * 16000:]).max() < 1e-3  # speech, then silence
    # the default mode still follows the audio
    default = run(bundle, ckpts, video, audio, tmp_path / "default.mp4")
    assert default.num_frames == 75


def test_30fps_input_gives_25fps_output(bundle, ckpts, clips, tmp_path):
    video, audio = clips["thirty_fps"]  # 36 frames at 30 fps = 1.2 s, audio 1.2 s
    out = tmp_path / "from30.mp4"
    run(bundle, ckpts, video, audio, out)
    info = probe_video(out)
    assert info.fps == 25 and info.num_frames == 30
    shown = source_indices(decode_all(out))
    # by presentation time, as ffmpeg's fps filter: the last source frame whose time rounds to slot <= k
    assert shown == [max(i for i in range(36) if np.floor(i * 25 / 30 + 0.5) <= k) for k in range(30)]


def test_frames_without_face_pass_through(bundle, ckpts, clips, tmp_path):
    video, audio = clips["gaps"]  # 40 frames, no face in 8..19
    out = tmp_path / "gaps.mp4"
    result = run(bundle, ckpts, video, audio, out)
    assert result.frames_with_face == 40 - 12
    frames_in, frames_out = decode_all(video), decode_all(out)
    blank_diff = np.abs(frames_out[8:20].astype(int) - frames_in[8:20].astype(int))
    assert blank_diff.mean() < 1.5
    face_diff = np.abs(frames_out[:8].astype(int) - frames_in[:8].astype(int)).max(-1)
    assert (face_diff > 12).sum() > 100


def test_no_face_anywhere_fails_clearly(bundle, ckpts, tmp_path):
    video, audio = face_clip(tmp_path, "empty", 0.8, blank_frames=tuple(range(20)))
    out = tmp_path / "never.mp4"
    with pytest.raises(NoFaceError, match="no face"):
        run(bundle, ckpts, video, audio, out)
    assert not out.exists() and not list(tmp_path.glob(".never*"))


def test_same_seed_same_output_and_cfg_off_single_batch(bundle, ckpts, clips, tmp_path):
    video, audio = clips["short_video_long_audio"]
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    run(bundle, ckpts, video, audio, a, seed=7, length_mode="cut_to_shortest")
    run(bundle, ckpts, video, audio, b, seed=7, length_mode="cut_to_shortest")
    assert np.array_equal(decode_all(a), decode_all(b))

    pipeline = bundle.pipeline
    batch_sizes = []
    hook = pipeline.unet.register_forward_pre_hook(lambda m, args: batch_sizes.append(args[0].shape[0]))
    try:
        run(bundle, ckpts, video, audio, tmp_path / "c.mp4", guidance_scale=1.0, length_mode="cut_to_shortest")
        assert set(batch_sizes) == {1}
        batch_sizes.clear()
        run(bundle, ckpts, video, audio, tmp_path / "d.mp4", guidance_scale=1.5, length_mode="cut_to_shortest")
        assert set(batch_sizes) == {2}
    finally:
        hook.remove()


def test_cfg_uses_zero_audio_as_unconditional_half(bundle, ckpts, clips, tmp_path):
    video, audio = clips["short_video_long_audio"]
    pipeline = bundle.pipeline
    seen = []
    hook = pipeline.unet.register_forward_hook(
        lambda m, args, kwargs, out: seen.append(kwargs["encoder_hidden_states"].clone()), with_kwargs=True)
    try:
        run(bundle, ckpts, video, audio, tmp_path / "cfg.mp4", length_mode="cut_to_shortest")
    finally:
        hook.remove()
    ehs = seen[0]
    half = ehs.shape[0] // 2
    assert torch.count_nonzero(ehs[:half]) == 0 and torch.count_nonzero(ehs[half:]) > 0


def test_bad_inputs_exit_codes_and_no_partial_output(ckpts, clips, tmp_path, capsys):
    video, audio = clips["short_video_long_audio"]
    out = tmp_path / "o.mp4"
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("just text " * 50)
    silent = tmp_path / "silent.wav"
    silent.write_bytes(b"RIFF")
    no_audio = write_video(tmp_path / "no_audio.mp4", [decode_all(video)[:5]], fps=25)
    cases = [
        (cli_args(ckpts, tmp_path / "missing.mp4", audio, out), "not found"),
        (cli_args(ckpts, not_video, audio, out), "cannot read video"),
        (cli_args(ckpts, video, silent, out), "audio"),
        (cli_args(ckpts, video, no_audio, out), "no audio stream"),
    ]
    for argv, message in cases:
        assert cli.main(argv) == cli.EXIT_BAD_INPUT, argv
        assert message in capsys.readouterr().err
        assert not out.exists()
    wrong = cli_args(ckpts, video, audio, out)
    wrong[wrong.index("--unet_config_path") + 1] = "configs/unet/stage2.yaml"
    assert cli.main(wrong) == cli.EXIT_BAD_INPUT and not out.exists()
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


def test_error_messages(ckpts, clips, tmp_path, capsys):
    video, audio = clips["short_video_long_audio"]
    wrong = cli_args(ckpts, video, audio, tmp_path / "o.mp4")
    wrong[wrong.index("--unet_config_path") + 1] = "configs/unet/stage2.yaml"
    cli.main(wrong)
    err = capsys.readouterr().err
    assert "error:" in err and "tiny" in err  # names the config the checkpoint actually fits
    with pytest.raises(InputError, match="U-Net checkpoint not found"):
        build_pipeline(LipsyncOptions(**{**tiny_options(ckpts), "inference_ckpt_path": str(tmp_path / "nope.pt")}))


def test_hostile_paths(bundle, ckpts, clips, tmp_path):
    folder = tmp_path / "we'ird \"dir\" $(touch pwned)"
    folder.mkdir()
    video, audio = clips["short_video_long_audio"]
    v, a = folder / "in $(touch pwned2).mp4", folder / "a 'b'.wav"
    v.write_bytes(video.read_bytes())
    a.write_bytes(audio.read_bytes())
    out = folder / "out `touch pwned3`.mp4"
    assert cli.main(cli_args(ckpts, v, a, out, "--length_mode", "cut_to_shortest")) == cli.EXIT_OK
    assert out.exists() and not list(tmp_path.rglob("pwned*"))


def test_batch_mode_with_one_bad_row(ckpts, clips, tmp_path, capsys):
    video, audio = clips["short_video_long_audio"]
    rows = [{"video": str(video), "audio": str(audio), "output": str(tmp_path / "ok1.mp4")},
            {"video": str(tmp_path / "missing.mp4"), "audio": str(audio), "output": str(tmp_path / "bad.mp4")},
            {"video": str(video), "audio": str(audio), "output": str(tmp_path / "ok2.mp4")}]
    batch = tmp_path / "jobs.json"
    batch.write_text(json.dumps(rows))
    argv = [a for a in cli_args(ckpts, video, audio, tmp_path / "x.mp4")]
    for flag in ("--video_path", "--audio_path", "--video_out_path"):
        i = argv.index(flag)
        del argv[i : i + 2]
    code = cli.main(argv + ["--batch", str(batch), "--length_mode", "cut_to_shortest"])
    assert code == cli.EXIT_BAD_INPUT
    assert (tmp_path / "ok1.mp4").exists() and (tmp_path / "ok2.mp4").exists() and not (tmp_path / "bad.mp4").exists()
    summary = capsys.readouterr().out
    assert "2 of 3 ok, 1 failed" in summary and "missing.mp4" not in summary.split("failed")[0]
    # re-running skips the finished outputs
    cli.main(argv + ["--batch", str(batch), "--length_mode", "cut_to_shortest"])
    assert capsys.readouterr().out.count("skipped (exists)") == 2


def _batch_argv(ckpts, clip) -> list[str]:
    argv = cli_args(ckpts, *clip, "unused.mp4")
    for flag in ("--video_path", "--audio_path", "--video_out_path"):
        i = argv.index(flag)
        del argv[i : i + 2]
    return argv


def test_batch_shards_split_the_rows_like_data_processing(ckpts, clips, tmp_path, capsys):
    """Two shard jobs (as a SLURM array) over one batch file: each runs only its rows, together all of them."""
    from latentsync.utils.sharding import shard_of

    video, audio = clips["short_video_long_audio"]
    # Three rows per shard: the shard depends on the whole output path (tmp_path included), so pick the names.
    names = [str(tmp_path / f"out{i}.mp4") for i in range(64)]
    outputs = [n for n in names if shard_of(n, 2) == 0][:3] + [n for n in names if shard_of(n, 2) == 1][:3]
    rows = [{"video": str(video), "audio": str(audio), "output": out} for out in outputs]
    batch = tmp_path / "jobs.json"
    batch.write_text(json.dumps(rows))
    expected = [{r["output"] for r in rows if shard_of(r["output"], 2) == k} for k in (0, 1)]
    assert expected[0] and expected[1]  # both shards have work
    argv = _batch_argv(ckpts, clips["short_video_long_audio"]) + ["--batch", str(batch), "--length_mode",
                                                                 "cut_to_shortest", "--num_shards", "2"]
    assert cli.main(argv + ["--shard_index", "0"]) == cli.EXIT_OK
    assert {str(p) for p in tmp_path.glob("out*.mp4")} == expected[0]
    assert f"shard 0 of 2: {len(expected[0])} row(s)" in capsys.readouterr().out
    assert cli.main(argv + ["--shard_index", "1"]) == cli.EXIT_OK
    assert {str(p) for p in tmp_path.glob("out*.mp4")} == expected[0] | expected[1] == {r["output"] for r in rows}
    capsys.readouterr()
    assert cli.main(argv + ["--shard_index", "1"]) == cli.EXIT_OK  # a re-run of a shard skips what it finished
    assert capsys.readouterr().out.count("skipped (exists)") == len(expected[1])


@pytest.mark.slow
@pytest.mark.needs_shared
def test_real_demo_clip(bundle, ckpts, tmp_path):
    video = shared_file("media", "demo1_video.mp4")
    audio = shared_file("media", "demo1_audio.wav")
    out = tmp_path / "demo1_out.mp4"
    result = run(bundle, ckpts, video, audio, out)
    info = probe_video(out)
    assert (info.width, info.height, info.fps) == (1080, 1920, 25)
    assert abs(info.num_frames / 25 - audio_seconds(audio)) <= 1 / 25
    assert result.frames_with_face == result.num_frames
    streams = describe_streams(out)
    assert (streams.video_codec, streams.audio_codec) == ("h264", "aac")


def test_dpmsolver_and_deepcache(ckpts, clips, tmp_path):
    video, audio = clips["short_video_long_audio"]
    out = tmp_path / "dpm.mp4"
    assert cli.main(cli_args(ckpts, video, audio, out, "--scheduler", "dpmsolver++", "--length_mode", "loop")) == 0
    assert probe_video(out).num_frames == 38  # two chunks: the multistep state restarts per chunk

    plain = build_pipeline(LipsyncOptions(**tiny_options(ckpts, inference_steps=6, enable_deepcache=False)))
    cached = build_pipeline(LipsyncOptions(**tiny_options(ckpts, inference_steps=6, enable_deepcache=True)))
    counts = {}
    for name, bundle in (("plain", plain), ("cached", cached)):
        deep = bundle.pipeline.unet.mid_block.resnets[0].conv1  # only runs when the deep branch is recomputed
        calls = []
        handle = deep.register_forward_hook(lambda *a, calls=calls: calls.append(1))
        try:
            run(bundle, ckpts, video, audio, tmp_path / f"{name}.mp4", inference_steps=6,
                length_mode="cut_to_shortest")
        finally:
            handle.remove()
        counts[name] = len(calls)
    assert counts["plain"] == 6 and counts["cached"] == 2  # cache_interval 3: full passes at steps 0 and 3
    a, b = decode_all(tmp_path / "plain.mp4"), decode_all(tmp_path / "cached.mp4")
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 10  # an approximation of the same result


def test_debug_video_shows_decisions_without_changing_the_output(bundle, ckpts, clips, tmp_path):
    video, audio = clips["gaps"]  # 40 frames, no face in 8..19
    plain, with_debug, debug = tmp_path / "plain.mp4", tmp_path / "out.mp4", tmp_path / "debug.mp4"
    run(bundle, ckpts, video, audio, plain)
    run(bundle, ckpts, video, audio, with_debug, debug_video=str(debug))
    out, overlay = decode_all(with_debug), decode_all(debug)
    assert np.array_equal(out, decode_all(plain))  # asking for the overlay changes nothing in the output
    assert overlay.shape == out.shape
    drawn = np.abs(overlay.astype(int) - out.astype(int)).max(-1) > 60
    assert drawn[:8].any(axis=0).sum() > 300  # box, points, mouth outline and labels on frames with a face
    green = (overlay[..., 1] > 180) & (overlay[..., 0] < 120) & (overlay[..., 2] < 120)
    assert green[:8].any() and not green[9:19].any()  # the face box only where a face is edited
    with pytest.raises(InputError, match="--debug_video .* refusing to overwrite"):
        run(bundle, ckpts, video, audio, tmp_path / "x.mp4", debug_video=str(video))


def test_output_fades_in_and_out_around_a_gap(bundle, ckpts, clips, tmp_path):
    video, audio = clips["gaps"]  # 40 frames, no face in 8..19: fades over frames 5..7 and 20..22
    out = tmp_path / "fades.mp4"
    run(bundle, ckpts, video, audio, out)
    frames_in, frames_out = decode_all(video), decode_all(out)
    edit = np.abs(frames_out.astype(float) - frames_in.astype(float)).mean(axis=(1, 2, 3))
    edit -= np.median(edit[8:20])  # what re-encoding alone changes
    full = np.median(np.concatenate([edit[:4], edit[24:]]))
    assert edit[7] < 0.5 * full and edit[20] < 0.5 * full  # a quarter of the edit next to the gap
    assert edit[7] < edit[5] and edit[20] < edit[22]
    assert edit[8:20].max() < 0.1 * full


def edited_region_of(bundle, ckpts, video, audio, out) -> np.ndarray:
    """(h, w) pixels the generated mouth changes in most frames of a plain run (occlusion off)."""
    run(bundle, ckpts, video, audio, out, occlusion="off")
    return (np.abs(decode_all(out).astype(int) - decode_all(video).astype(int)).max(-1) > 12).mean(0) > 0.5


def test_occluder_masks_reach_the_output(bundle, ckpts, tmp_path, monkeypatch):
    """Whatever the face pass marks as an occluder keeps its original pixels (the masker is fixed here)."""
    from latentsync.faces import face_pass
    from latentsync.faces.occlusion import OcclusionPatch

    video, audio = face_clip(tmp_path, "fixed", 1.0)
    edited = edited_region_of(bundle, ckpts, video, audio, tmp_path / "plain.mp4")
    ys, xs = np.nonzero(edited)
    box = (int(xs.min() + 0.35 * np.ptp(xs)), int(ys.min()), int(xs.min() + 0.6 * np.ptp(xs)), int(ys.max()) + 1)

    class FixedMasker:
        def patch(self, frame, face_box, landmarks):
            return OcclusionPatch(box, np.ones((box[3] - box[1], box[2] - box[0]), np.float32))

        def reset(self):
            pass

        def revisions(self):
            return []

        def close(self):
            pass

    monkeypatch.setattr(face_pass, "occluder_masker", lambda mode, settings: FixedMasker())
    out = tmp_path / "kept.mp4"
    run(bundle, ckpts, video, audio, out)
    change = np.abs(decode_all(out).astype(int) - decode_all(video).astype(int)).max(-1)
    kept = np.zeros_like(edited)
    kept[box[1] : box[3], box[0] : box[2]] = True
    inner = np.zeros_like(edited)  # H.264 blocks straddling the kept box's edge mix both sides
    inner[box[1] + 4 : box[3] - 4, box[0] + 4 : box[2] - 4] = True
    assert (change[:, edited & inner] <= 8).mean() >= 0.9  # the rest is re-encoding noise of a textured face
    assert change[:, edited & kept].mean() < 0.3 * change[:, edited & ~kept].mean()
    assert (change[:, edited & ~kept] > 12).mean() > 0.5  # the rest of the mouth is still edited


def test_a_dark_object_in_front_of_the_mouth_is_kept(bundle, ckpts, tmp_path):
    video, audio = face_clip(tmp_path, "mic", 1.0)
    edited = edited_region_of(bundle, ckpts, video, audio, tmp_path / "clean_out.mp4")
    ys, xs = np.nonzero(edited)
    frames = decode_all(video)
    # A dark, striped "microphone" through the middle of the edited mouth region, in every frame.
    x0, x1 = int(xs.min() + 0.35 * np.ptp(xs)), int(xs.min() + 0.6 * np.ptp(xs))
    stripes = (40 + 25 * ((np.arange(frames.shape[1]) // 3) % 2))[:, None, None]
    occluded = frames.copy()
    occluded[:, ys.min() - 10 :, x0:x1] = stripes[ys.min() - 10 :]
    mic_video = write_video(tmp_path / "mic.mp4", [occluded], fps=25)
    mic_in = decode_all(mic_video)
    painted = {}
    inside = edited.copy()
    inside[:, : x0 + 3] = inside[:, x1 - 3 :] = False
    for mode in ("auto", "off"):
        out = tmp_path / f"mic_{mode}.mp4"
        run(bundle, ckpts, mic_video, audio, out, occlusion=mode)
        painted[mode] = (np.abs(decode_all(out).astype(int) - mic_in.astype(int)).max(-1)[:, inside] > 8).mean()
    assert painted["off"] > 0.2  # painted over without occlusion handling
    assert painted["auto"] <= 0.5 * painted["off"]  # mostly kept with it (docs/faces.md has the corpus numbers)


def test_a_misspelled_pipeline_option_is_an_error(bundle, ckpts, clips, tmp_path):
    pipeline = bundle.pipeline
    video, audio = clips["two_seconds"]
    with pytest.raises(TypeError, match="guidance_scal"):
        pipeline(str(video), str(audio), str(tmp_path / "x.mp4"), guidance_scal=2.0)
    with pytest.raises(TypeError, match="RunProgress"):
        pipeline(str(video), str(audio), str(tmp_path / "x.mp4"), callback=print)
    with pytest.raises(TypeError, match="unknown option"):
        latentsync.lipsync(str(video), str(audio), str(tmp_path / "x.mp4"), pipeline=bundle,
                           **tiny_options(ckpts, guidance_scal=2.0))
    assert not (tmp_path / "x.mp4").exists()
