"""Training curves of one or more SyncNet runs in one PNG (e.g. an ablation of two architectures).

    python -m eval.draw_syncnet_lines --line "StableSyncNet=output/syncnet/run/checkpoints/checkpoint-20000.pt" \
        --line "Wav2Lip SyncNet=other/checkpoint-20000.pt" --out ablation.png

A source is a training checkpoint (its `train_step_list`, `train_loss_list`, `val_step_list`,
`val_loss_list`, `val_acc_list`), a JSON file with those lists, or a JSON-lines / CSV log with
`step, train_loss, val_loss, val_acc` columns (empty cells allowed).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

HISTORY_KEYS = ("train_step_list", "train_loss_list", "val_step_list", "val_loss_list", "val_acc_list")
FIGURE_SIZE = (7.766, 4.8)  # golden ratio, as the official chart


def _from_records(records: list[dict]) -> dict:
    """History lists from log rows; a validation value missing from a row becomes NaN (a gap in the line)."""
    present = lambda row, column: row.get(column) not in (None, "")  # noqa: E731
    value = lambda row, column: float(row[column]) if present(row, column) else float("nan")  # noqa: E731
    rows = [r for r in records if present(r, "step")]
    train = [r for r in rows if present(r, "train_loss")]
    val = [r for r in rows if present(r, "val_loss") or present(r, "val_acc")]
    return {
        "train_step_list": [int(float(r["step"])) for r in train],
        "train_loss_list": [float(r["train_loss"]) for r in train],
        "val_step_list": [int(float(r["step"])) for r in val],
        "val_loss_list": [value(r, "val_loss") for r in val],
        "val_acc_list": [value(r, "val_acc") for r in val],
    }


def load_history(path: str | Path) -> dict:
    """Training history lists from a checkpoint (.pt/.pth, loaded with weights_only=True), JSON, JSONL or CSV."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such checkpoint or log: {path}")
    suffix = path.suffix.lower()
    if suffix in (".pt", ".pth", ".ckpt"):
        from latentsync.checkpoint import load_torch_file

        data = load_torch_file(path, what="training checkpoint")
    elif suffix == ".json":
        data = json.loads(path.read_text())
    elif suffix == ".jsonl":
        data = _from_records([json.loads(line) for line in path.read_text().splitlines() if line.strip()])
    elif suffix == ".csv":
        with open(path, newline="") as f:
            data = _from_records(list(csv.DictReader(f)))
    else:
        raise ValueError(f"unsupported history file {path}: use a .pt checkpoint, .json, .jsonl or .csv")
    history = {key: [float(v) for v in data.get(key, [])] for key in HISTORY_KEYS}
    if not history["train_step_list"] and not history["val_step_list"]:
        raise ValueError(f"{path} holds no training history ({', '.join(HISTORY_KEYS)})")
    return history


class Chart:
    """Collects named runs and draws their train (thin) and validation (thick, same colour) curves."""

    def __init__(self):
        self.runs: list[tuple[str, dict]] = []

    def add_history(self, history: dict, line_name: str) -> None:
        self.runs.append((line_name, history))

    def add_ckpt(self, ckpt_path: str | Path, line_name: str) -> None:
        self.add_history(load_history(ckpt_path), line_name)

    def draw(self, save_path: str | Path, plot_val: bool = True, metric: str = "loss") -> Path:
        """Write the chart (format from the extension). `metric` "loss" or "accuracy" (validation only)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        if not self.runs:
            raise ValueError("no runs added to the chart")
        with plt.rc_context({"font.size": 14, "font.family": "serif", "font.serif": ["DejaVu Serif"]}):
            fig, ax = plt.subplots(figsize=FIGURE_SIZE)
            for name, history in self.runs:
                if metric == "accuracy":
                    ax.plot(history["val_step_list"], history["val_acc_list"], label=name, linewidth=1.5)
                elif plot_val:
                    (line,) = ax.plot(history["train_step_list"], history["train_loss_list"], label=name,
                                      linewidth=0.5, alpha=0.5)
                    ax.plot(history["val_step_list"], history["val_loss_list"], linewidth=1.5, color=line.get_color())
                else:
                    ax.plot(history["train_step_list"], history["train_loss_list"], label=name, linewidth=1)
            ax.set_xlabel("Step")
            ax.set_ylabel("Accuracy" if metric == "accuracy" else "Loss")
            for legend_line in ax.legend().get_lines():
                legend_line.set_linewidth(2)
            save_path = Path(save_path)
            save_path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(save_path, transparent=True)
            plt.close(fig)
        return save_path


def main(argv: list[str] | None = None) -> int:
    from latentsync.command_line import OneLineParser, add_verbose_flag, quiet_console, run_cli

    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--line", action="append", required=True, metavar="NAME=PATH",
                        help="a run to draw: legend name and checkpoint/log path (repeatable)")
    parser.add_argument("--out", default="syncnet_lines.png", help="output image (.png, .pdf, .svg)")
    parser.add_argument("--metric", choices=("loss", "accuracy"), default="loss")
    parser.add_argument("--no_val", action="store_true", help="draw only the training loss")
    add_verbose_flag(parser)
    args = parser.parse_args(argv)
    quiet_console(args.verbose)
    return run_cli(lambda: draw(args), args.verbose)


def draw(args) -> int:
    from latentsync.errors import InputError
    from latentsync.validation import check_output_file

    check_output_file(args.out, "--out", extensions=(".png", ".pdf", ".svg"))
    chart = Chart()
    for spec in args.line:
        name, sep, path = spec.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise InputError(f"--line must look like NAME=PATH, got {spec!r}")
        try:
            chart.add_ckpt(path, name)
        except (FileNotFoundError, ValueError) as error:
            raise InputError(f"--line {spec}: {error}") from None
    print(f"wrote {chart.draw(args.out, plot_val=not args.no_val, metric=args.metric)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
