"""Training-curve charts from SyncNet checkpoints and logs."""

from __future__ import annotations

import json
import math

import pytest
import torch

from eval.draw_syncnet_lines import Chart, load_history, main


def _history(scale):
    steps = list(range(0, 1000, 50))
    return {
        "train_step_list": steps,
        "train_loss_list": [scale * math.exp(-s / 400) for s in steps],
        "val_step_list": steps[::4],
        "val_loss_list": [scale * 1.1 * math.exp(-s / 400) for s in steps[::4]],
        "val_acc_list": [0.5 + s / 2000 for s in steps[::4]],
    }


def test_checkpoint_json_and_csv_sources(tmp_path):
    ckpt = tmp_path / "checkpoint-1000.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "global_step": 1000, **_history(1.0)}, ckpt)
    assert load_history(ckpt)["val_acc_list"][-1] == pytest.approx(0.5 + 800 / 2000)

    (tmp_path / "h.json").write_text(json.dumps(_history(2.0)))
    assert load_history(tmp_path / "h.json")["train_loss_list"][0] == 2.0

    (tmp_path / "log.csv").write_text("step,train_loss,val_loss,val_acc\n1,0.9,,\n2,0.8,0.85,0.6\n3,0.7,,\n")
    history = load_history(tmp_path / "log.csv")
    assert history["train_step_list"] == [1, 2, 3] and history["val_step_list"] == [2]
    assert history["val_loss_list"] == [0.85] and history["val_acc_list"] == [0.6]

    (tmp_path / "log.jsonl").write_text('{"step": 5, "train_loss": 0.5}\n{"step": 10, "val_acc": 0.7}\n')
    history = load_history(tmp_path / "log.jsonl")
    assert history["val_step_list"] == [10] and math.isnan(history["val_loss_list"][0])

    with pytest.raises(ValueError, match="no training history"):
        torch.save({"state_dict": {}}, tmp_path / "bare.pt")
        load_history(tmp_path / "bare.pt")


def test_chart_png(tmp_path):
    from PIL import Image

    chart = Chart()
    chart.add_history(_history(1.0), "StableSyncNet")
    chart.add_history(_history(1.5), "Wav2Lip SyncNet")
    for metric in ("loss", "accuracy"):
        out = chart.draw(tmp_path / f"{metric}.png", metric=metric)
        with Image.open(out) as image:
            assert image.format == "PNG" and image.size[0] > 300
            assert len(set(image.convert("RGBA").getdata())) > 10  # something was drawn


def test_cli(tmp_path, capsys):
    ckpt = tmp_path / "c.pt"
    torch.save(_history(1.0), ckpt)
    assert main(["--line", f"run A={ckpt}", "--out", str(tmp_path / "a.png")]) == 0
    assert (tmp_path / "a.png").stat().st_size > 1000
    assert main(["--line", str(ckpt)]) == 2  # a user error (the command-line policy)
    assert "NAME=PATH" in capsys.readouterr().err
