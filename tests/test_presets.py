"""Presets: quality (the official run) and fast fill the options; explicit flags win; settings printed once."""

from __future__ import annotations

import pytest
import torch

import scripts.inference as cli
from latentsync.api import LipsyncOptions, cpu_has_native_bf16, resolve_dtype
from tests.inference_fixtures import cli_args, face_clip, tiny_options


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("preset_media")
    video, audio = face_clip(folder, "clip", 0.8)
    (folder / "outputs").mkdir()
    return {"video": video, "audio": audio, "folder": folder}


def test_presets_fill_options_and_explicit_flags_win():
    quality = LipsyncOptions.from_kwargs()
    assert (quality.scheduler, quality.inference_steps, quality.guidance_scale, quality.enable_deepcache) == \
        ("ddim", 20, 1.5, True)  # the official inference.sh run
    fast = LipsyncOptions.from_kwargs(preset="fast")
    assert (fast.scheduler, fast.inference_steps, fast.guidance_fraction, fast.enable_deepcache, fast.dtype) == \
        ("dpmsolver++", 6, 0.5, True, "fast")
    assert quality.guidance_fraction == 1.0
    mixed = LipsyncOptions.from_kwargs(preset="fast", inference_steps=4, enable_deepcache=False)
    assert (mixed.inference_steps, mixed.enable_deepcache, mixed.scheduler) == (4, False, "dpmsolver++")
    expected = torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    assert resolve_dtype("fast", torch.device("cpu")) == expected


def test_cli_preset_flags(ckpts, media):
    argv = cli_args(ckpts, media["video"], media["audio"], media["folder"] / "outputs" / "o.mp4")
    args = cli.parse_args(argv + ["--preset", "fast", "--inference_steps", "3", "--disable_deepcache"])
    options = cli.options_from_args(args)
    assert (options.preset, options.scheduler, options.inference_steps, options.enable_deepcache) == \
        ("fast", "dpmsolver++", 3, False)
    plain = cli.options_from_args(cli.parse_args(argv))
    assert (plain.scheduler, plain.inference_steps, plain.enable_deepcache) == ("ddim", 2, True)


def test_every_run_prints_its_settings_once(ckpts, media, tmp_path, capsys):
    import latentsync

    latentsync.lipsync(str(media["video"]), str(media["audio"]), str(tmp_path / "o.mp4"),
                       **tiny_options(ckpts, progress=True, preset="fast", dtype="fp32"))
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("settings:")]
    assert len(lines) == 1, err
    assert "preset fast" in lines[0] and "dpmsolver++" in lines[0] and "2 steps" in lines[0]
    assert "DeepCache on (interval 3, branch 0)" in lines[0] and "float32" in lines[0]


def test_fast_preset_runs_end_to_end_in_its_half_type(ckpts, media, tmp_path):
    import latentsync
    from latentsync.utils.media import probe_video

    out = tmp_path / "fast.mp4"
    result = latentsync.lipsync(str(media["video"]), str(media["audio"]), str(out),
                                **tiny_options(ckpts, preset="fast", inference_steps=None))
    assert probe_video(out).num_frames == result.num_frames == 20
    assert result.frames_with_face == 20
    if cpu_has_native_bf16():
        assert resolve_dtype("fast", torch.device("cpu")) == torch.bfloat16


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("preset", ["quality", "fast"])
def test_presets_on_cuda_in_fp16_stay_close_to_cpu_fp32(ckpts, media, tmp_path, preset):
    """The fp16 CUDA path (model weights, warp and paste-back on the GPU) against the CPU fp32 run."""
    import numpy as np

    import latentsync
    from tests.inference_fixtures import decode_all

    outs = {}
    for device, dtype in (("cpu", "fp32"), ("cuda", "fp16")):
        outs[device] = tmp_path / f"{device}.mp4"
        result = latentsync.lipsync(str(media["video"]), str(media["audio"]), str(outs[device]),
                                    **tiny_options(ckpts, preset=preset, device=device, dtype=dtype))
        assert result.frames_with_face == result.num_frames == 20
    cpu, gpu = (decode_all(outs[d]).astype(np.float64) for d in ("cpu", "cuda"))
    psnr = 10 * np.log10(255**2 / max(float(np.mean((cpu - gpu) ** 2)), 1e-12))
    assert psnr > 30, f"{preset}: CUDA fp16 output is {psnr:.1f} dB from CPU fp32"
