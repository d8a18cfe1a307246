"""A real face aligned to the LatentSync template, with a mouth drawn per frame at a given opening and width.

The source is `skimage.data.astronaut()` (public domain). Its own smile is inpainted away once; each frame
then warps the face with a slow head sway and draws lips, mouth cavity and teeth as anti-aliased ellipses at
`supersample` times the output size, area-downsampled for smooth edges; the jaw drops with the opening. Aligned like the official training
data: the official similarity transform puts the eyebrows and nose on the template points of
`latentsync.faces.alignment`, and the (75 x 100) template box is stretched to a square frame.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from latentsync.faces.alignment import AlignRestore

INPAINT_RADIUS = 5


@lru_cache(maxsize=4)
def _source_face(mouth_center: tuple[int, int], conceal_axes: tuple[int, int]) -> np.ndarray:
    """The astronaut photo (RGB uint8) with the region of its smile inpainted to plain skin."""
    from skimage import data

    image = data.astronaut()
    hole = np.zeros(image.shape[:2], np.uint8)
    cv2.ellipse(hole, mouth_center, conceal_axes, 0, 0, 360, 255, -1)
    bgr = cv2.inpaint(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), hole, INPAINT_RADIUS, cv2.INPAINT_TELEA)
    out = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    out.setflags(write=False)
    return out


def template_matrix(face_cfg, size: int) -> np.ndarray:
    """2x3 affine from source pixels to an aligned `size` x `size` frame.

    The official alignment (`AlignRestore.transformation_from_points`, no smoothing) maps the three points to
    the template crop of (75 x 100) * 2.8 * size/256 pixels, which is then stretched to a square, exactly as
    the preprocessing resizes the crop to the training resolution.
    """
    restorer = AlignRestore(resolution=size)
    source = np.array([face_cfg.left_brow, face_cfg.right_brow, face_cfg.nose], dtype=np.float64)
    similarity, _ = restorer.transformation_from_points(source, restorer.face_template, smooth=False)
    crop_w, crop_h = restorer.face_size
    stretch = np.diag([size / crop_w, size / crop_h])
    return np.hstack([stretch @ similarity[:, :2], stretch @ similarity[:, 2:]]).astype(np.float64)


def _apply(matrix: np.ndarray, point) -> np.ndarray:
    return matrix[:, :2] @ np.asarray(point, dtype=np.float64) + matrix[:, 2]


class FaceRenderer:
    """Renders frames of one clip: fixed per-clip appearance and head-sway parameters drawn from `rng`."""

    def __init__(self, resolution: int, cfg, rng: np.random.Generator, fps: float = 25.0):
        self.resolution = resolution
        self.size = resolution * int(cfg.supersample)
        self.face_cfg = cfg.face
        self.look = cfg.appearance
        self.fps = fps
        source = _source_face(tuple(cfg.face.mouth_center), tuple(cfg.face.conceal_axes)).astype(np.float32)
        gain = rng.uniform(*self.look.channel_gain, size=3)
        self.source = np.clip(source * gain + rng.uniform(*self.look.brightness), 0, 255).astype(np.uint8)
        low, high = np.array(self.look.lip_rgb, dtype=np.float64)
        self.lip_rgb = tuple(float(c) for c in rng.uniform(low, high))
        self.base = template_matrix(cfg.face, self.size)
        motion = cfg.head_motion
        self.sway = {
            name: (rng.uniform(0, amp), rng.uniform(*motion.frequency_hz), rng.uniform(0, 2 * np.pi))
            for name, amp in (("dx", motion.shift), ("dy", motion.shift), ("angle", motion.angle_deg),
                              ("scale", motion.scale))
        }

    def _sway(self, name: str, t: float) -> float:
        amplitude, frequency, phase = self.sway[name]
        return amplitude * np.sin(2 * np.pi * frequency * t + phase)

    def frame_matrix(self, index: int) -> np.ndarray:
        """Source -> frame affine of frame `index`: the template alignment plus the head sway."""
        t = index / self.fps
        centre = (self.size / 2, self.size / 2)
        sway = cv2.getRotationMatrix2D(centre, self._sway("angle", t), 1 + self._sway("scale", t))
        sway[:, 2] += (self._sway("dx", t) * self.size, self._sway("dy", t) * self.size)
        return np.vstack([sway, [0, 0, 1]])[:2] @ np.vstack([self.base, [0, 0, 1]])

    def mouth_box(self, index: int = 0) -> tuple[float, float, float]:
        """(x, y, closed width) of the mouth in output pixels for frame `index` (used by tests/measurements)."""
        matrix = self.frame_matrix(index)
        x, y = _apply(matrix, self.face_cfg.mouth_center)
        scale_x = np.hypot(*matrix[0, :2])
        factor = self.resolution / self.size
        return x * factor, y * factor, self.face_cfg.mouth_width * scale_x * factor

    def _draw_mouth(self, canvas: np.ndarray, matrix: np.ndarray, opening: float, width: float) -> None:
        cx, cy = _apply(matrix, self.face_cfg.mouth_center)
        scale_x, scale_y = np.hypot(*matrix[0, :2]), np.hypot(*matrix[1, :2])
        angle = np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0]))
        half_w = 0.5 * self.face_cfg.mouth_width * width * scale_x
        lip = self.look.lip_thickness * self.face_cfg.mouth_width * scale_y
        gap = 0.5 * opening * self.look.max_opening * self.face_cfg.mouth_width * scale_y
        shift = 4  # cv2 fixed-point bits: sub-pixel ellipse geometry
        def ellipse(image, axes, colour):
            cv2.ellipse(image, (int(round(cx * 16)), int(round(cy * 16))),
                        (max(1, int(round(axes[0] * 16))), max(1, int(round(axes[1] * 16)))),
                        angle, 0, 360, colour, -1, cv2.LINE_AA, shift)

        ellipse(canvas, (half_w, gap + lip), self.lip_rgb)
        if gap > 0.25:
            ellipse(canvas, (half_w * 0.82, gap), tuple(float(c) for c in self.look.cavity_rgb))
            if opening > self.look.teeth_from_opening:
                teeth = canvas.copy()
                ellipse(teeth, (half_w * 0.7, gap * 0.9), tuple(float(c) for c in self.look.teeth_rgb))
                rows = np.arange(canvas.shape[0])[:, None]
                upper = rows < cy - gap * 0.35  # teeth only along the upper lip
                canvas[:] = np.where(upper[..., None], teeth, canvas)
        else:
            cv2.line(canvas, (int(round((cx - half_w * 0.9) * 16)), int(round(cy * 16))),
                     (int(round((cx + half_w * 0.9) * 16)), int(round(cy * 16))),
                     tuple(float(c) * 0.6 for c in self.lip_rgb), max(1, self.size // 128), cv2.LINE_AA, shift)

    def _drop_jaw(self, canvas: np.ndarray, matrix: np.ndarray, opening: float) -> tuple[np.ndarray, float]:
        """Shift the chin down with the opening (smoothly, fading towards the cheeks); returns (image, drop px).

        Real mouths open mostly by dropping the jaw, which moves far more pixels than the lips alone.
        """
        look, face = self.look, self.face_cfg
        scale_y = np.hypot(*matrix[1, :2])
        drop = opening * look.jaw_drop * face.mouth_width * scale_y
        if drop < 0.05:
            return canvas, 0.0
        cx, cy = _apply(matrix, face.mouth_center)
        chin = cy + face.chin_below_mouth * scale_y
        rows = np.arange(self.size, dtype=np.float32)[:, None]
        cols = np.arange(self.size, dtype=np.float32)[None, :]
        ramp_in = np.clip((rows - cy) / max(1.0, 0.6 * (chin - cy)), 0, 1)
        ramp_out = np.clip(1 - (rows - chin) / max(1.0, 0.8 * (chin - cy)), 0, 1)
        spread = face.jaw_half_width * np.hypot(*matrix[0, :2])
        weight = (ramp_in * ramp_out) * np.exp(-(((cols - cx) / spread) ** 2))
        map_x = np.broadcast_to(cols, (self.size, self.size)).astype(np.float32)
        map_y = (rows - drop * weight).astype(np.float32)
        warped = cv2.remap(canvas, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return warped, drop

    def render(self, opening: np.ndarray, width: np.ndarray) -> np.ndarray:
        """Frames (n, R, R, 3) uint8 RGB for per-frame mouth opening in [0, 1] and width multipliers."""
        frames = np.empty((len(opening), self.resolution, self.resolution, 3), np.uint8)
        for index, (o, w) in enumerate(zip(opening, width, strict=True)):
            matrix = self.frame_matrix(index)
            canvas = cv2.warpAffine(self.source, matrix, (self.size, self.size), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE)
            canvas, drop = self._drop_jaw(canvas, matrix, float(o))
            mouth = matrix.copy()
            mouth[1, 2] += 0.5 * drop  # the lower lip travels with the jaw: the mouth centre moves half as far
            self._draw_mouth(canvas, mouth, float(o), float(w))
            frames[index] = cv2.resize(canvas, (self.resolution, self.resolution), interpolation=cv2.INTER_AREA)
        return frames
