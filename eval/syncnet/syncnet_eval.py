"""SyncNetEval: the syncnet_python "S" model plus its evaluation protocol on one (face-crop) video."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from eval.settings import SyncNetProtocol
from eval.syncnet.features import embed_windows, float_to_int16_scale
from eval.syncnet.model import S
from eval.syncnet.scores import SyncScores, sync_scores
from latentsync.checkpoint import load_weights

# Prefixes a converted file may carry: the SyncNetEval wrapper's own state_dict, DataParallel.
KNOWN_PREFIXES = ("__S__.", "module.")


class SyncNetEval(torch.nn.Module):
    """Holds the SyncNet as `__S__` (so `state_dict()` keys match the original wrapper) and scores clips."""

    def __init__(
        self,
        dropout: float = 0,
        num_layers_in_fc_layers: int = 1024,
        device: str = "cpu",
        width_divisor: int = 1,
        protocol: SyncNetProtocol | None = None,
    ):
        super().__init__()
        self.__S__ = S(num_layers_in_fc_layers=num_layers_in_fc_layers, width_divisor=width_divisor).to(device)
        self.device = device
        self.protocol = protocol or SyncNetProtocol.from_eval_config()
        self.__S__.eval()

    @property
    def net(self) -> S:
        return self.__S__

    def loadParameters(self, path: str | Path) -> None:  # noqa: N802 - official name
        """Load a SyncNet state dict (`syncnet_v2.model`, or a converted .pt/.safetensors), never unpickling code.

        Unlike the original's silent per-tensor copy, unknown, missing (other than BatchNorm's
        `num_batches_tracked`) and mis-shaped tensors are errors.
        """
        hint = ("Put syncnet_v2.model (from the LatentSync checkpoints, auxiliary/) there or pass --initial_model; "
                "see docs/evaluation.md")
        load_weights(self.__S__, path, "SyncNet", hint=hint, prefixes=KNOWN_PREFIXES,
                     optional_suffixes=("num_batches_tracked",))
        self.__S__.eval()

    def _protocol(self, batch_size: int | None = None, vshift: int | None = None) -> SyncNetProtocol:
        changes = {k: v for k, v in (("batch_size", batch_size), ("vshift", vshift)) if v is not None}
        return replace(self.protocol, **changes) if changes else self.protocol

    def embed(self, crops_bgr: np.ndarray, audio_int16: np.ndarray, batch_size: int | None = None):
        """Per-window (video, audio) embeddings of face crops (BGR uint8) and int16-scale 16 kHz audio."""
        self.__S__.eval()
        return embed_windows(self.__S__, crops_bgr, audio_int16, self._protocol(batch_size), device=self.device)

    def evaluate_arrays(
        self, crops_bgr: np.ndarray, audio_int16: np.ndarray, vshift: int | None = None, batch_size: int | None = None
    ) -> SyncScores:
        """Offset, LSE-D and LSE-C of one face track given as arrays."""
        im_feat, cc_feat = self.embed(crops_bgr, audio_int16, batch_size)
        return sync_scores(im_feat, cc_feat, self._protocol(vshift=vshift).vshift)

    def evaluate(self, video_path: str | Path, temp_dir=None, batch_size: int | None = None, vshift: int | None = None):
        """Score a video that already shows a face crop (what the tracker produces): (av_offset, min_dist, conf).

        `temp_dir` is accepted for compatibility and unused: nothing is written to disk.
        """
        from latentsync.utils.media import VideoReader, read_audio

        reader = VideoReader(video_path, target_fps=self.protocol.fps)
        frames_bgr = np.ascontiguousarray(reader.get_frames(range(len(reader)))[..., ::-1])
        audio = float_to_int16_scale(read_audio(video_path, self.protocol.sample_rate))
        scores = self.evaluate_arrays(frames_bgr, audio, vshift=vshift, batch_size=batch_size)
        return scores.av_offset, scores.min_dist, scores.confidence
