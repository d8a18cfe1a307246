"""TREPA loss: VideoMAE-v2 clip features of generated vs. real video, compared after L2 normalisation."""

from latentsync.trepa.loss import TREPALoss
from latentsync.trepa.videomae import VideoMAEConfig, VideoMAEv2, load_videomae

__all__ = ["TREPALoss", "VideoMAEConfig", "VideoMAEv2", "load_videomae"]
