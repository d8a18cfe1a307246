"""Shots: where a video cuts, found once per video on small frames, as frame numbers of the face pass.

One home for cut detection: data processing splits its clips here (`detect_cuts`), and inference restarts
tracking, smoothing and gap bridging at every cut. The detector is PySceneDetect's `AdaptiveDetector` (the
official `scenedetect detect-adaptive`) on frames that ffmpeg scales down while decoding, to the size
scenedetect would analyse (`detection_size`, ~256 px on the longer side). The `speaker` pre-pass feeds it its
own decoded analysis frames (one decode); otherwise `find_cuts` is a short pass of its own.

Cuts are found on source frames (each decoded frame once) and then expressed on the 25 fps output timeline
of the face pass (`timeline_cuts`): output frame k starts a shot when it is the first to show a frame of that
shot. The adaptive detector reports a cut `window_width` frames late; `CutDetector.delay` says by how many.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from latentsync.utils.media import VideoReader, iter_small_frames


def detection_size(width: int, height: int) -> tuple[int, int]:
    """The frame size scenedetect analyses (its automatic downscale: the longer side to ~256 px)."""
    from scenedetect.scene_manager import compute_downscale_factor

    factor = compute_downscale_factor(max(width, height))
    return max(1, round(width / factor)), max(1, round(height / factor))


class CutDetector:
    """Feed every decoded frame in order (`add`); `cuts` are the source frame numbers that start a new shot.

    `settings` has the AdaptiveDetector's numbers (`adaptive_threshold`, `min_scene_len` in frames,
    `window_width`, `min_content_val`). Frames of another size than `size` are scaled to it (INTER_AREA);
    `rgb=True` frames are turned into the BGR scenedetect expects."""

    def __init__(self, settings, fps: float, size: tuple[int, int]):
        from scenedetect import AdaptiveDetector

        self.detector = AdaptiveDetector(adaptive_threshold=float(settings.adaptive_threshold),
                                         min_scene_len=int(settings.min_scene_len),
                                         window_width=int(settings.window_width),
                                         min_content_val=float(settings.min_content_val))
        self.fps = float(fps)
        self.size = tuple(size)
        self.count = 0
        self.cuts: list[int] = []

    @property
    def delay(self) -> int:
        """A cut at frame c is known once frame c + delay has been added."""
        return int(self.detector.window_width)

    def add(self, frame: np.ndarray, rgb: bool = False) -> list[int]:
        """Analyse the next frame; returns the cuts this frame revealed (source frame numbers)."""
        from scenedetect import FrameTimecode

        if frame.shape[1::-1] != self.size:
            frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
        if rgb:
            frame = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        found = [c.frame_num for c in self.detector.process_frame(FrameTimecode(self.count, self.fps), frame)]
        self.count += 1
        self.cuts += found
        return found

    def finish(self) -> list[int]:
        """All cuts, sorted, after the detector's end-of-video step."""
        from scenedetect import FrameTimecode

        if self.count:
            self.cuts += [c.frame_num for c in self.detector.post_process(FrameTimecode(self.count - 1, self.fps))]
        self.cuts = sorted(set(self.cuts))
        return self.cuts


def detect_cuts(path, settings, fps: float, width: int, height: int) -> list[tuple[int, int]]:
    """Shot frame ranges [start, end) over all decoded frames of `path`; an empty list without a cut.

    ffmpeg scales while decoding (one decode, no full-size frames in Python): about 10x faster at 1080p
    than `scenedetect.detect`, which decodes full frames through OpenCV and resizes each one."""
    size = detection_size(width, height)
    detector = CutDetector(settings, fps, size)
    for frame in iter_small_frames(path, *size, pix_fmt="bgr24"):
        detector.add(frame)
    cuts = detector.finish()
    if not cuts:
        return []
    bounds = [0, *cuts, detector.count]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


def shot_ranges(cuts: Iterable[int], num_frames: int) -> list[tuple[int, int]]:
    """Shots [start, end) covering frames 0 .. num_frames-1, split at the `cuts` (frames that start a shot)."""
    starts = sorted({int(c) for c in cuts if 0 < int(c) < num_frames})
    bounds = [0, *starts, num_frames]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


def timeline_cuts(source_cuts: Iterable[int], indices: np.ndarray) -> list[int]:
    """Output frames that start a shot: for each source cut c, the first output frame showing a frame >= c.

    `indices` is the face pass's map "output frame -> source frame" (non-decreasing). Cuts before the second
    output frame or after the last one start no shot on the timeline."""
    indices = np.asarray(indices, dtype=np.int64)
    starts = np.searchsorted(indices, np.asarray(list(source_cuts), dtype=np.int64), side="left")
    return sorted({int(k) for k in starts if 0 < k < len(indices)})


@dataclass(frozen=True)
class Timeline:
    """The face pass's frames of a video: output frame k shows decoded source frame `indices[k]`."""

    indices: np.ndarray
    width: int
    height: int
    fps: float  # the source's (average) frame rate, for the detector's time units
    has_audio: bool

    @classmethod
    def of(cls, video_path, fps: float, num_frames: int) -> Timeline:
        """The first `num_frames` output frames at `fps`, as the face pass reads them (`VideoReader.indices`)."""
        with VideoReader(video_path, target_fps=fps) as reader:
            info = reader.info
            return cls(np.asarray(reader.indices[:num_frames], dtype=np.int64), info.width, info.height,
                       float(info.fps), bool(info.has_audio))

    def repeats(self) -> np.ndarray:
        """How many output frames show each source frame 0 .. last shown (0: skipped)."""
        if not len(self.indices):
            return np.zeros(0, np.int64)
        return np.bincount(self.indices, minlength=int(self.indices.max()) + 1)


CUTS_AHEAD = 4  # the cut finder's thread may run this many frames ahead of its consumer (beyond its own delay)


class SourceCuts:
    """A `CutDetector` fed consecutive source frames (RGB, any size), in the finder shape `frames_after_cuts`
    takes: the speaker pass's cuts, in source frame numbers."""

    def __init__(self, detector: CutDetector):
        self.detector = detector

    @property
    def delay(self) -> int:
        return self.detector.delay

    def add(self, index: int, frame: np.ndarray) -> list[int]:
        return self.detector.add(frame, rgb=True)

    def settled_before(self) -> int:
        """Frames before this one have their cut status final."""
        return max(0, self.detector.count - self.detector.delay)

    def finish(self) -> list[int]:
        return self.detector.finish()


def frames_after_cuts(frames: Iterable[np.ndarray], finder, cuts: set[int], ahead: int = CUTS_AHEAD
                      ) -> Iterator[tuple[int, np.ndarray]]:
    """(index, frame) in order, each frame's cut (if it starts a shot) already in `cuts` when it comes out.

    The finder (`TimelineCuts` or `SourceCuts`: a resize and scenedetect's detector, ~1 ms a frame) runs in a
    thread of its own up to its `delay` + `ahead` frames ahead of the consumer, off its critical path. It sees the
    same frames in the same order, so it finds the same cuts; a frame comes out only once the finder's own
    answer says its cut status is final (the detector reports a cut `delay` frames late)."""
    held: deque[tuple[int, np.ndarray]] = deque()
    answers: deque[Future] = deque()
    settled = 0
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cuts")
    try:
        for index, frame in enumerate(frames):
            answers.append(pool.submit(_analyse, finder, index, frame))
            held.append((index, frame))
            while answers and (answers[0].done() or len(held) > finder.delay + ahead):
                settled = _take_answer(answers.popleft(), cuts, settled)
                while held and held[0][0] < settled:
                    yield held.popleft()
        while answers:
            settled = _take_answer(answers.popleft(), cuts, settled)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    cuts.update(finder.finish())
    yield from held


def _analyse(finder, index: int, frame: np.ndarray) -> tuple[list[int], int]:
    """In the finder's thread: one frame; (the cuts it revealed, the frames settled before it)."""
    found = finder.add(index, frame)
    return found, finder.settled_before()


def _take_answer(answer: Future, cuts: set[int], settled: int) -> int:
    """Record one frame's answer from the finder; returns the frames settled so far."""
    found, settled_before = answer.result()
    cuts.update(found)
    return max(settled, settled_before)


class TimelineCuts:
    """Cuts found on the fly on the face pass's own frames (the 25 fps output timeline), in its frame numbers.

    The face pass decodes every frame anyway, so this costs a resize and the detector's work, not a second
    decode. A frame the timeline repeats (a slower or variable source frame rate) is analysed once, as the
    detector would see the source: a repeat is no content change. `settled_before()` says up to which frame
    the cuts are final (the detector reports a cut `delay` analysed frames late)."""

    def __init__(self, settings, frame_size: tuple[int, int], fps: float = 25.0):
        self.detector = CutDetector(settings, fps, detection_size(*frame_size))
        self.timeline_of: list[int] = []  # analysed frame -> its first timeline frame
        self._last: np.ndarray | None = None

    @property
    def delay(self) -> int:
        return self.detector.delay

    def add(self, index: int, frame: np.ndarray) -> list[int]:
        """Analyse timeline frame `index` (RGB, any size); returns the cuts it revealed (timeline frames)."""
        # Bilinear, as scenedetect's own SceneManager downscales: ~0.3 ms for a 1080p frame (an area average of
        # the whole frame costs ~5 ms, a fifth of the face pass's time per frame).
        small = cv2.resize(frame, self.detector.size, interpolation=cv2.INTER_LINEAR)
        if self._last is not None and np.array_equal(small, self._last):
            return []
        self._last = small
        self.timeline_of.append(index)
        return [self.timeline_of[c] for c in self.detector.add(small, rgb=True)]

    def settled_before(self) -> int:
        """Timeline frames before this one have their cut status final."""
        unknown = self.detector.count - self.detector.delay  # first analysed frame whose cut may still come
        return self.timeline_of[unknown] if 0 <= unknown < len(self.timeline_of) else 0

    def finish(self) -> list[int]:
        """Every cut (timeline frames), after the detector's end-of-video step."""
        return sorted({self.timeline_of[c] for c in self.detector.finish() if 0 < c < len(self.timeline_of)})


def find_cuts(video_path, settings, fps: float, num_frames: int, progress=None) -> list[int]:
    """Cuts of a video file on the face pass's timeline, in a pass of its own over small frames: output frames
    0 < k < num_frames that start a shot. (Runs find them inside the face pass, `TimelineCuts`, or the speaker pass.)

    `progress` (optional) gets `update(1)` per analysed source frame, like a tqdm bar."""
    timeline = Timeline.of(video_path, fps, num_frames)
    if len(timeline.indices) < 2:
        return []
    size = detection_size(timeline.width, timeline.height)
    detector = CutDetector(settings, timeline.fps, size)
    last = int(timeline.indices[-1])
    for index, frame in enumerate(iter_small_frames(video_path, *size, pix_fmt="bgr24")):
        if index > last + detector.delay:  # no later frame can start a shot that the output shows
            break
        detector.add(frame)
        if progress is not None:
            progress.update(1)
    return timeline_cuts(detector.finish(), timeline.indices)
