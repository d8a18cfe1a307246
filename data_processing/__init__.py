"""Data processing: raw talking-head videos -> training-ready 25 fps, face-aligned, audio-synced clips.

Seven resumable steps, each reading one folder and writing the next (see docs/data_processing.md):
broken -> resample -> shot -> segment -> affine -> sync -> quality. Run with `python -m data_processing`.
"""

from data_processing.pipeline import STEP_NAMES, run_pipeline
from data_processing.settings import load_settings

__all__ = ["STEP_NAMES", "load_settings", "run_pipeline"]
