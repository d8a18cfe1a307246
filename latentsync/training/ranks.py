"""Checks that every process of a run trains the same model."""

from __future__ import annotations

import torch


def parameter_fingerprint(model: torch.nn.Module) -> torch.Tensor:
    """Per-tensor (sum, sum of squares) of the parameters in float64: equal fingerprints = equal replicas."""
    rows = [torch.stack([p.detach().double().sum(), p.detach().double().pow(2).sum()]) for p in model.parameters()]
    return torch.stack(rows)


def check_ranks_in_sync(accelerator, model: torch.nn.Module) -> float:
    """All processes call this together; returns the largest fingerprint difference between ranks (0 = in sync).

    Raises if the replicas diverged (a broken all-reduce or a rank that skipped a step), which would otherwise
    go unnoticed until the checkpoint of rank 0 turns out to be a different model than the others trained.
    """
    local = parameter_fingerprint(model).to(accelerator.device)
    gathered = accelerator.gather(local[None]).cpu()  # (ranks, tensors, 2)
    spread = float((gathered - gathered[0:1]).abs().max()) if len(gathered) > 1 else 0.0
    if spread != 0.0:
        raise RuntimeError(f"model replicas differ between processes (max fingerprint difference {spread:.3g})")
    return spread


def checkpoint_facts(accelerator, model: torch.nn.Module) -> dict | None:
    """Every process calls this at a checkpoint step (it checks that the replicas agree, `check_ranks_in_sync`);
    the main process gets what the sidecar records about the processes, the others None: they save nothing."""
    spread = check_ranks_in_sync(accelerator, model)
    if not accelerator.is_main_process:
        return None
    return {"num_processes": accelerator.num_processes, "replica_spread": spread}
