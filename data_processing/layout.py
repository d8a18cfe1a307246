"""Where every step reads and writes: folders next to input_dir (official layout) and the manifests."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from data_processing.settings import DataProcessingSettings, threshold_label
from latentsync.errors import InputError

# Step name -> key of its output folder in the config's `folders:` section (None: writes no files).
OUTPUT_FOLDER_KEYS = {
    "broken": None,
    "resample": "resampled",
    "shot": "shot",
    "segment": "segmented",
    "affine": "affine_transformed",
    "sync": "av_synced",
    "quality": "high_visual_quality",
}
TMP_FOLDER = ".tmp"  # per-step scratch space inside each output folder (same filesystem -> atomic renames)


@dataclass(frozen=True)
class Layout:
    """Absolute folders of one pipeline run."""

    input_dir: Path
    output_root: Path
    outputs: dict  # step name -> output folder (the input folder for "broken", which writes nothing)
    manifests: Path

    @classmethod
    def create(cls, input_dir: str | os.PathLike, output_root: str | os.PathLike | None,
               cfg: DataProcessingSettings) -> Layout:
        input_dir = Path(input_dir).expanduser().resolve()
        root = Path(output_root).expanduser().resolve() if output_root else input_dir.parent
        outputs = {}
        for step, key in OUTPUT_FOLDER_KEYS.items():
            if key is None:
                outputs[step] = input_dir
            else:
                name = getattr(cfg.folders, key).format(threshold=threshold_label(cfg.sync.min_confidence))
                outputs[step] = root / name
        layout = cls(input_dir, root, outputs, root / cfg.folders.manifests)
        layout.check_disjoint()
        return layout

    def check_disjoint(self) -> None:
        """Outputs must never land inside the user's input folder (or the reverse): re-runs would re-read them."""
        for step, folder in self.outputs.items():
            if step == "broken":
                continue
            if folder == self.input_dir or self.input_dir in folder.parents or folder in self.input_dir.parents:
                raise InputError(
                    f"output folder of step '{step}' ({folder}) overlaps the input folder ({self.input_dir}); "
                    "give --output_root outside the input folder"
                )

    def input_of(self, steps: list[str], step: str) -> Path:
        """The folder a step reads: the input_dir for the first step, else the previous step's output."""
        index = steps.index(step)
        return self.input_dir if index == 0 else self.outputs[steps[index - 1]]

    def manifest_dir(self, step: str) -> Path:
        return self.manifests / step

    def tmp_dir(self, step: str, shard_tag: str) -> Path:
        base = self.outputs[step] if step != "broken" else self.manifests
        return base / TMP_FOLDER / f"{step}-{shard_tag}"


def list_videos(folder: Path, extensions: Iterable[str]) -> list[str]:
    """Video files under `folder`, as sorted POSIX paths relative to it; hidden files and folders are skipped."""
    extensions = {e.lower() for e in extensions}
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in extensions:
                found.append(Path(dirpath, name).relative_to(folder).as_posix())
    return sorted(found)
