"""The seven steps, in pipeline order. Modules are imported on demand so cheap steps stay cheap."""

from __future__ import annotations

import importlib

# step name -> "module:class"
STEP_CLASSES = {
    "broken": "data_processing.steps.broken:CheckBroken",
    "resample": "data_processing.steps.resample:Resample",
    "shot": "data_processing.steps.shots:SplitShots",
    "segment": "data_processing.steps.segment:Segment",
    "affine": "data_processing.steps.affine:AlignFaces",
    "sync": "data_processing.steps.sync:SyncFilter",
    "quality": "data_processing.steps.quality:QualityFilter",
}


def step_class(name: str):
    if name not in STEP_CLASSES:
        raise ValueError(f"unknown step '{name}'; steps are: {', '.join(STEP_CLASSES)}")
    module, cls = STEP_CLASSES[name].split(":")
    return getattr(importlib.import_module(module), cls)


def make_step(name: str, cfg, worker_index: int = 0, layout=None):
    return step_class(name)(cfg, worker_index=worker_index, layout=layout)
