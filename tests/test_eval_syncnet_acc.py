"""StableSyncNet accuracy metric: confusion counts on controlled embeddings, the real model class, the CLI."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from eval.syncnet_accuracy import syncnet_accuracy


class FixedCosine(torch.nn.Module):
    """Returns embeddings whose cosine is the first pixel of `frames` (controlled similarities)."""

    def forward(self, frames, mel):
        cos = frames[:, 0, 0, 0].clamp(-1, 1)
        vision = torch.stack([torch.ones_like(cos), torch.zeros_like(cos)], 1)
        audio = torch.stack([cos, (1 - cos**2).sqrt()], 1)
        return vision, audio


def _batch(cosines, labels):
    frames = torch.zeros(len(cosines), 2, 2, 2)
    frames[:, 0, 0, 0] = torch.tensor(cosines)
    return frames, torch.zeros(len(cosines), 1, 80, 52), torch.tensor(labels, dtype=torch.float32).reshape(-1, 1)


def test_confusion_counts_and_threshold():
    batches = [_batch([0.9, 0.6, 0.4, 0.1], [1, 0, 1, 0]), _batch([0.51, 0.5, -0.3], [1, 1, 0])]
    report = syncnet_accuracy(FixedCosine(), batches, threshold=0.5)
    assert (report.true_positive, report.false_negative, report.false_positive, report.true_negative) == (2, 2, 1, 2)
    assert report.num_samples == 7 and report.accuracy == pytest.approx(4 / 7)
    d = report.as_dict()
    assert d["mean_cosine_positive"] == pytest.approx((0.9 + 0.4 + 0.51 + 0.5) / 4, rel=1e-6)
    assert d["mean_cosine_negative"] == pytest.approx((0.6 + 0.1 - 0.3) / 3, rel=1e-6)
    assert "57.14%" in report.summary() and "7 samples" in report.summary()

    capped = syncnet_accuracy(FixedCosine(), iter(batches), threshold=0.5, max_samples=5)
    assert capped.num_samples == 5 and capped.true_positive == 2


def test_runs_on_a_tiny_stable_syncnet():
    from latentsync.config import load_config, model_config
    from latentsync.models.stable_syncnet import StableSyncNet

    torch.manual_seed(0)
    model = StableSyncNet(model_config(load_config("configs/syncnet/tiny.yaml")))
    frames, mel = torch.randn(6, 48, 32, 64), torch.randn(6, 1, 80, 52)
    labels = torch.tensor([1, 0, 1, 0, 1, 0.0]).reshape(-1, 1)
    report = syncnet_accuracy(model, [(frames, mel, labels)], threshold=0.5)
    vision, audio = model(frames, mel)
    expected = ((F.cosine_similarity(vision, audio) > 0.5).float() == labels.reshape(-1)).float().mean()
    assert report.num_samples == 6 and report.accuracy == pytest.approx(expected.item())


def test_cli_reports_accuracy(tmp_path, monkeypatch, capsys):
    import eval.eval_syncnet_acc as cli
    from latentsync.config import load_config, model_config
    from latentsync.models.stable_syncnet import StableSyncNet

    torch.manual_seed(0)
    model = StableSyncNet(model_config(load_config("configs/syncnet/tiny.yaml")))
    ckpt = tmp_path / "syncnet.pt"
    torch.save({"state_dict": model.state_dict(), "global_step": 1}, ckpt)

    def fake_batches(config, device, stats=None):
        while True:
            yield torch.randn(4, 48, 32, 64), torch.randn(4, 1, 80, 52), torch.tensor([[1.0], [0.0], [1.0], [0.0]])

    monkeypatch.setattr(cli, "dataset_batches", fake_batches)
    out = tmp_path / "acc.json"
    code = cli.main(["--config_path", "configs/syncnet/tiny.yaml", "--ckpt_path", str(ckpt), "--device", "cpu",
                     "--json_out", str(out), "data.num_val_samples=10"])
    assert code == 0
    assert "SyncNet accuracy" in capsys.readouterr().out
    saved = json.loads(out.read_text())
    assert saved["num_samples"] == 10 and 0 <= saved["accuracy"] <= 1 and saved["threshold"] == 0.5
