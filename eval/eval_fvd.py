"""FVD between a folder of real videos and a folder of generated ones, on face crops (the LatentSync protocol).

    python -m eval.eval_fvd --real_videos_dir originals/ --fake_videos_dir results/

Each video contributes one clip: frames [20, 36) at the native frame rate, each cropped to the first
mediapipe face box and resized to 224x224 (INTER_AREA). Needs checkpoints/auxiliary/i3d_torchscript.pt.
Exit codes as every entry point (latentsync/command_line.py): 2 and one `error:` line for a missing or corrupt
model, a missing folder, a video without a usable clip or a bad device, checked before the model loads.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from eval.fvd import compute_fvd, i3d_features, load_i3d
from eval.settings import DEFAULT_EVAL_CONFIG, FVDSettings, checkpoint_path, load_eval_config
from eval.video_files import list_videos
from latentsync.command_line import OneLineParser, add_verbose_flag, quiet_console, run_cli
from latentsync.errors import InputError
from latentsync.validation import device_or_default


class FVDClipError(InputError):
    """A video cannot give an FVD clip (too short, or a frame without a face)."""


class FaceClipExtractor:
    """Video -> (num_frames, H, W, 3) uint8 face clip, as `FVD.detect_video` in the original."""

    def __init__(self, settings: FVDSettings | None = None):
        import mediapipe as mp

        self.settings = settings or FVDSettings.from_eval_config()
        self.detector = mp.solutions.face_detection.FaceDetection(
            model_selection=0, min_detection_confidence=self.settings.face_confidence
        )

    def crop_face(self, image: np.ndarray) -> np.ndarray | None:
        """Crop of the first detected face (box truncated to int pixels, clipped to the image), or None."""
        height, width = image.shape[:2]
        results = self.detector.process(np.ascontiguousarray(image))
        if not results.detections:
            return None
        box = results.detections[0].location_data.relative_bounding_box
        xmin, ymin = int(box.xmin * width), int(box.ymin * height)
        face_w, face_h = int(box.width * width), int(box.height * height)
        xmin, ymin = max(0, xmin), max(0, ymin)
        crop = image[ymin : min(height, ymin + face_h), xmin : min(width, xmin + face_w)]
        return crop if crop.size else None

    def clip(self, video_path: str | Path) -> np.ndarray:
        from latentsync.utils.media import VideoReader

        start, count = self.settings.start_frame, self.settings.num_frames
        reader = VideoReader(video_path)
        if len(reader) < start + count:
            raise FVDClipError(
                f"{video_path} has {len(reader)} frames; the FVD clip is frames [{start}, {start + count}), "
                f"so it needs at least {start + count}"
            )
        out_h, out_w = self.settings.resolution
        faces = []
        for offset, frame in enumerate(reader.get_frames(range(start, start + count))):
            face = self.crop_face(frame)
            if face is None:
                raise FVDClipError(f"no face detected in frame {start + offset} of {video_path}")
            faces.append(cv2.resize(face, (out_w, out_h), interpolation=cv2.INTER_AREA))
        return np.stack(faces)

    def clips(self, videos: str | Path | list) -> torch.Tensor:
        """(N, F, H, W, 3) float32 in [0, 1] for a folder, one video file or a list of files."""
        paths = list_videos(videos) if not isinstance(videos, list) else [Path(v) for v in videos]
        return torch.from_numpy(np.stack([self.clip(p) for p in paths])).float() / 255.0

    def close(self) -> None:
        self.detector.close()


def eval_fvd(real_videos, fake_videos, i3d=None, device: str = "cpu", settings: FVDSettings | None = None) -> float:
    """FVD between the face clips of two video sets (folders, files or lists). `i3d` defaults to the checkpoint."""
    if i3d is None:  # before the slow clip extraction, so a missing model fails fast
        i3d = load_i3d(checkpoint_path("i3d"), device)
    extractor = FaceClipExtractor(settings)
    try:
        real, fake = extractor.clips(real_videos), extractor.clips(fake_videos)
    finally:
        extractor.close()
    # The original passes (real, fake) into compute_our_fvd(videos_fake, videos_real): keep that order so the
    # value matches it to the last bits (the distance is symmetric up to ~1e-9 relative).
    return compute_fvd(i3d_features(i3d, real, device), i3d_features(i3d, fake, device))


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real_videos_dir", required=True, help="folder (or one file) of real videos")
    parser.add_argument("--fake_videos_dir", required=True, help="folder (or one file) of generated videos")
    parser.add_argument("--i3d_path", default=None, help="I3D TorchScript (default: checkpoints.i3d in the config)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--config", default=DEFAULT_EVAL_CONFIG)
    add_verbose_flag(parser)
    parser.add_argument("overrides", nargs="*", help="config overrides such as fvd.start_frame=0")
    args = parser.parse_args(argv)
    quiet_console(args.verbose)
    return run_cli(lambda: evaluate(args), args.verbose)


def evaluate(args) -> int:
    cfg = load_eval_config(args.config, args.overrides)
    settings = FVDSettings.from_eval_config(cfg)
    device = device_or_default(args.device)
    real = [Path(p) for p in _videos(args.real_videos_dir, "--real_videos_dir")]
    fake = [Path(p) for p in _videos(args.fake_videos_dir, "--fake_videos_dir")]
    for videos, option in ((real, "--real_videos_dir"), (fake, "--fake_videos_dir")):
        if len(videos) < 2:
            raise InputError(f"{option} holds {len(videos)} video(s); FVD needs at least 2 per set (a covariance "
                             "from one sample is undefined)")
    i3d = load_i3d(args.i3d_path or checkpoint_path("i3d", cfg), device)
    value = eval_fvd(real, fake, i3d, device, settings)
    print(f"FVD: {value:.3f}")
    return 0


def _videos(source: str, option: str) -> list[Path]:
    try:
        return list_videos(source)
    except FileNotFoundError as exc:
        raise InputError(f"{option}: {exc}") from None


if __name__ == "__main__":
    sys.exit(main())
