"""configs/faces.yaml as one frozen record, read once (`load_faces_config`) and passed down to every faces module.

The record mirrors the file's sections (`config.tracking.detect_every`, `config.occlusion.mode`, ...); building it
checks every key's type (a missing or mistyped key is a `SettingsError` naming the file, the key and the value).
Whoever needs a faces setting gets this record (a `FaceDetector` carries one as `.config`); only
`load_faces_config` reads the file. The fixed mouth mask's geometry (`fixed_mask`) is data for the conditioning
code, carried here because it is described in the same file.
"""

from __future__ import annotations

from pathlib import Path

from latentsync.config import CONFIG_DIR, config_name, load_config
from latentsync.settings import Section, SettingsError, at_least

FACES_CONFIG = CONFIG_DIR / "faces.yaml"
OCCLUSION_MODES = ("auto", "hands", "off")


class DetectorSettings(Section):
    """`detector:` which backend, the official validity filters, and the default face choice."""

    backend: str
    min_score: float
    min_box_wh: tuple[int, ...]
    aspect_range: tuple[float, ...]
    choice: str
    choice_index: int
    choice_position: tuple[float, ...] | None


class MediapipeSettings(Section):
    """`mediapipe:` the offline default backend (BlazeFace boxes + face mesh landmarks)."""

    detection_model: int
    detect_max_side: int
    mesh_roi_scale: float
    mesh_max_side: int
    mesh_min_score: float
    points_preset: str
    min_box_wh: tuple[int, ...]


class InsightfaceSettings(Section):
    """`insightface:` the official backend's model folder and detection size."""

    root: str
    det_size: int


class FaceAlignmentSettings(Section):
    """`face_alignment:` the LatentSync 1.0 backend's model folder and point preset."""

    root: str
    points_preset: str


class TrackingSettings(Section):
    """`tracking:` the detector stride and how a track continues."""

    detect_every: int
    min_iou: float
    lost_redetect: bool
    reacquire_after: int


class ShotSettings(Section):
    """`shots:` the cut detector (PySceneDetect AdaptiveDetector numbers)."""

    detect: bool
    adaptive_threshold: float
    min_scene_len: int
    window_width: int
    min_content_val: float


class MouthPairs(Section):
    """`speaker.mouth_pairs:` inner-lip landmark index pairs per backend."""

    mediapipe: tuple[tuple[int, ...], ...]
    face_alignment: tuple[tuple[int, ...], ...]
    insightface: tuple[tuple[int, ...], ...]


class LandmarkLists(Section):
    """Landmark indices per backend (`speaker.lip_points`, `speaker.face_anchors`); empty: not defined."""

    mediapipe: tuple[int, ...]
    face_alignment: tuple[int, ...]
    insightface: tuple[int, ...]


class SpeakerSettings(Section):
    """`speaker:` the speaking-face pre-pass (mouth/audio correlation against a circular-shift null)."""

    analysis_max_side: int
    smooth_frames: int
    lag_frames: tuple[int, ...]
    min_frames: int
    envelope_floor: float
    duplicate_iou: float
    null_min_shift: int
    null_shifts: int
    null_quantile: float
    null_margin: float
    speech_band_hz: tuple[float, ...]
    audible_rms: float
    audible_quantile: float
    mouth_pairs: MouthPairs
    lip_points: LandmarkLists
    face_anchors: LandmarkLists


class SmoothingSettings(Section):
    """`smoothing:` of the 3 alignment points."""

    method: str
    alpha: float
    ema_weight: float
    round_points: bool


class GapSettings(Section):
    """`gaps:` which face-less runs are bridged."""

    max_bridge: int


class BlendSettings(Section):
    """`blend:` how an edit starts and stops."""

    fade_frames: int


class MaskBands(Section):
    """`fixed_mask.bands:` rows [start, end) with the same zero spans [x_start, x_end)."""

    rows: tuple[int, ...]
    spans: tuple[tuple[int, ...], ...]


class MaskBowl(Section):
    """`fixed_mask.bowl:` one zero span per row from `row_start` on: left and right edges."""

    row_start: int
    left: tuple[int, ...]
    right: tuple[int, ...]


class FixedMaskGeometry(Section):
    """`fixed_mask:` the official 256x256 mouth mask as geometry (1 = keep, 0 = regenerate)."""

    size: int
    bands: MaskBands
    bowl: MaskBowl


class OcclusionSettings(Section):
    """`occlusion:` occluders in front of the lower face (every key documented in configs/faces.yaml)."""

    mode: str
    roi_side: float
    roi_top: float
    roi_bottom: float
    analysis_width: int = at_least(16)
    hand_every: int = at_least(1)
    hand_hold: int = at_least(0)
    hand_watch_reach: float
    hand_side: float
    hand_below: float
    hand_max_side: int = at_least(64)
    hand_min_score: float
    hand_model_complexity: int = at_least(0)
    hand_min_on_face: int = at_least(0)
    hand_face_reach: float
    hand_tip_reach: float
    hand_min_palm: float
    hand_wrist_band: float
    lips_min_cover: float
    lips_min_contrast: float
    lips_hidden_share: float
    lips_unseen_min: float
    finger_width: float
    hand_dilate: float
    chroma_z: float
    chroma_floor: float
    neutral_ratio: float
    sheen_share: float
    dark_ratio: float
    shadow_share: float
    min_luma: float
    mouth_dilate: float
    nose_dilate: float
    seed_inset: float
    seed_reach: float
    reach: float
    min_area: float
    close: float
    blend_contrast: float
    blend_tolerance: float
    beyond_face: bool
    chin_spread: float
    colour_every: int = at_least(1)
    colour_bins: int = at_least(1)
    mouth_frames: int = at_least(0)
    object_bins: int = at_least(0)
    part_share: float
    part_outline: float
    end_elongation: float
    end_reach: float = at_least(0.0)
    look_back: int = at_least(0)
    carry_after: int = at_least(1)
    carry_frames: int = at_least(0)
    refine: int = at_least(0)
    refine_radius: float
    refine_eps: float
    refine_threshold: float
    feather: float
    decay: float
    hold: float
    min_value: float

    def check(self, source: str) -> None:
        if self.mode not in OCCLUSION_MODES:
            raise SettingsError(f"{source}: occlusion.mode must be one of {', '.join(OCCLUSION_MODES)}, "
                                f"got {self.mode!r}")


class FacesConfig(Section):
    """The whole of configs/faces.yaml, section by section."""

    detector: DetectorSettings
    mediapipe: MediapipeSettings
    insightface: InsightfaceSettings
    face_alignment: FaceAlignmentSettings
    tracking: TrackingSettings
    shots: ShotSettings
    speaker: SpeakerSettings
    smoothing: SmoothingSettings
    gaps: GapSettings
    blend: BlendSettings
    fixed_mask: FixedMaskGeometry
    occlusion: OcclusionSettings

    def min_box_wh(self, backend: str) -> tuple[int, ...]:
        """The smallest valid box for `backend`: its own rule where its section has one (BlazeFace boxes are
        square), else the official `detector.min_box_wh`."""
        own = getattr(getattr(self, backend, None), "min_box_wh", None)
        return own if own is not None else self.detector.min_box_wh

    def mouth_pairs(self, backend: str) -> tuple[tuple[int, ...], ...]:
        """The inner-lip landmark pairs of `backend` (empty when it defines none)."""
        return getattr(self.speaker.mouth_pairs, backend, ())

    def lip_frame(self, backend: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """`backend`'s inner-lip points and the face anchors they are measured against (eye corners first);
        both empty when it defines none."""
        lips = getattr(self.speaker.lip_points, backend, ())
        anchors = getattr(self.speaker.face_anchors, backend, ())
        return (lips, anchors) if lips and len(anchors) >= 4 else ((), ())


def load_faces_config(path: str | Path | None = None, overrides=()) -> FacesConfig:
    """configs/faces.yaml (or `path`) with `key=value` overrides (e.g. `tracking.detect_every=1`), checked."""
    path = path or FACES_CONFIG
    return FacesConfig.from_config(load_config(path, overrides), config_name(path))


def as_faces_config(config: FacesConfig | str | Path | None) -> FacesConfig:
    """A faces config from None (the packaged file), a record, or a path."""
    if config is None:
        return load_faces_config()
    if isinstance(config, FacesConfig):
        return config
    if isinstance(config, (str, Path)):
        return load_faces_config(config)
    raise TypeError(f"a faces config is a FacesConfig (load_faces_config), a path or None, not {type(config).__name__}")
