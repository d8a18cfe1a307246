"""syncnet_python's SyncNet ("S") and the LSE-C / LSE-D / AV-offset protocol built on it."""

from eval.syncnet.model import S
from eval.syncnet.scores import SyncScores, calc_pdist, sync_scores
from eval.syncnet.syncnet_eval import SyncNetEval

__all__ = ["S", "SyncNetEval", "SyncScores", "calc_pdist", "sync_scores"]
