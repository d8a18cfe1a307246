"""Benchmark the audio front-end: whisper features and per-frame chunks of a clip, and the SyncNet mel.

Uses a random checkpoint with Whisper-tiny encoder dimensions (n_mels 80, n_audio_state 384, n_audio_head 6,
n_audio_layer 4), so no download is needed; the speed of the encoder does not depend on the weights.

    .venv/bin/python benchmarks/bench_audio.py --seconds 60 --threads 1

Prints one JSON object: seconds per stage (best of --repeat) and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch
from whisper.model import disable_sdpa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from latentsync.config import audio_settings  # noqa: E402
from latentsync.utils.audio import melspectrogram  # noqa: E402
from latentsync.whisper.audio2feature import Audio2Feature  # noqa: E402
from latentsync.whisper.tiny import make_random_whisper_checkpoint, synthetic_audio  # noqa: E402

TINY_ENCODER_DIMS = {
    "n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": 384, "n_audio_head": 6, "n_audio_layer": 4,
    # the text decoder is never built by Audio2Feature; keep it small so the checkpoint is quick to write
    "n_vocab": 128, "n_text_ctx": 16, "n_text_state": 384, "n_text_head": 6, "n_text_layer": 1,
}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def best_of(repeat: int, fn):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def official_style_chunks(feature_array: torch.Tensor, fps: float) -> list[torch.Tensor]:
    """The official per-frame Python loop (for comparison with the vectorised feature2chunks)."""
    chunks, i, length, dim = [], 0, len(feature_array), feature_array.shape[-1]
    while True:
        start = int(i * (50.0 / fps))
        centre = int(i * 50 / fps)
        picked = [feature_array[min(max(j, 0), length - 1)] for j in range(centre - 4, centre + 6)]
        chunks.append(torch.cat(picked, dim=0).reshape(-1, dim))
        i += 1
        if start > length:
            return chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="clip length")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--repeat", type=int, default=3, help="runs per stage; the best time is reported")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpt = make_random_whisper_checkpoint(tmp / "tiny_dims_random.pt", TINY_ENCODER_DIMS, seed=0)
        wav = tmp / "clip.wav"
        soundfile.write(wav, synthetic_audio(args.seconds, seed=0), 16000, subtype="PCM_16")
        rss_before = peak_rss_mib()

        load_s, encoder = best_of(1, lambda: Audio2Feature(ckpt, device=args.device))
        encoder.log_mel_spectrogram(str(wav))  # warm-up: first ffmpeg call and whisper's filterbank load
        rss_model = peak_rss_mib()
        feat_s, feat = best_of(args.repeat, lambda: encoder.audio2feat(str(wav)))
        rss_features = peak_rss_mib()
        with disable_sdpa():  # the official vendored whisper computes attention by hand, without SDPA
            manual_s, _ = best_of(args.repeat, lambda: encoder.audio2feat(str(wav)))
        fixed = Audio2Feature(ckpt, device=args.device, fix_window_boundaries=True)
        fixed_s, _ = best_of(args.repeat, lambda: fixed.audio2feat(str(wav)))
        chunks_s, chunks = best_of(args.repeat, lambda: encoder.feature2chunks(feat, fps=25))
        loop_s, loop_chunks = best_of(args.repeat, lambda: official_style_chunks(feat, 25))
        assert torch.equal(torch.stack(loop_chunks), torch.stack(chunks)), "vectorised chunks differ from the loop"
        cached = Audio2Feature(ckpt, device=args.device, audio_embeds_cache_dir=tmp / "cache")
        cached.audio2feat(str(wav))
        cache_hit_s, _ = best_of(args.repeat, lambda: cached.audio2feat(str(wav)))
        x = soundfile.read(wav, dtype="int16")[0].astype(np.float32) / 32768
        mel_s, mel = best_of(args.repeat, lambda: melspectrogram(x, audio_settings()))

    report = {
        "clip_seconds": args.seconds,
        "device": args.device,
        "threads": args.threads,
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "features_shape": list(feat.shape),
        "chunks": [len(chunks), *chunks[0].shape],
        "syncnet_mel_shape": list(mel.shape),
        "seconds": {
            "load_encoder": round(load_s, 3),
            "audio2feat": round(feat_s, 3),
            "audio2feat_manual_attention": round(manual_s, 3),
            "audio2feat_fix_window_boundaries": round(fixed_s, 3),
            "audio2feat_cache_hit": round(cache_hit_s, 4),
            "feature2chunks_vectorised": round(chunks_s, 4),
            "feature2chunks_official_loop": round(loop_s, 4),
            "syncnet_melspectrogram": round(mel_s, 4),
        },
        "realtime_factor_audio2feat": round(args.seconds / feat_s, 1),
        "peak_rss_mib": {
            "after_imports_and_test_data": round(rss_before, 1),
            "after_loading_encoder": round(rss_model, 1),
            "after_audio2feat": round(rss_features, 1),
            "end_of_run": round(peak_rss_mib(), 1),
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
