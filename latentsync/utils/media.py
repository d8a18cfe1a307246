"""Media I/O shared by every stage: streamed video frames, audio as float32 mono, atomic H.264/AAC output.

Videos are never held in memory whole: frames come out of an ffmpeg pipe in chunks (decord probes the file and
serves what the pipe cannot; ffmpeg alone reads what decord cannot decode, such as AV1) and go into an ffmpeg pipe
one chunk at a time. ffmpeg always runs from an argument list (never a shell string), so any path works.
"""

from __future__ import annotations

import functools
import math
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import numpy as np

from latentsync.errors import InputError, OutputWriteError
from latentsync.utils.closing import ClosesOnExit

OUT_OF_SPACE_MESSAGES = ("No space left on device", "File too large", "Disk quota exceeded")


class MediaError(InputError):
    """An input file cannot be used (missing, not a video, no audio stream, ...). The message says which and why."""


def ffmpeg_exe() -> str:
    """The ffmpeg to run: the system one if installed, else the static binary shipped by imageio-ffmpeg."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # pragma: no cover - part of the pinned stack
        raise RuntimeError("ffmpeg not found: install it (apt install ffmpeg) or `pip install imageio-ffmpeg`") from exc
    return imageio_ffmpeg.get_ffmpeg_exe()


def _safe_path(path: str | os.PathLike) -> str:
    """Absolute path, so a name starting with '-' can never be read by ffmpeg as an option."""
    return os.path.abspath(os.fspath(path))


def _require_file(path: str | os.PathLike, what: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise MediaError(f"{what} not found: {p}")
    if p.stat().st_size == 0:
        raise MediaError(f"{what} is empty (0 bytes): {p}")
    return p


# ----------------------------------------------------------------------------------------------- probing


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, as the readers below will deliver it (rotation already applied to width/height)."""

    path: str
    fps: float
    num_frames: int
    width: int
    height: int
    rotation: int  # display rotation from the container (0/90/180/270); decoded frames are already upright
    has_audio: bool
    sample_aspect: tuple[int, int] = (1, 1)  # pixel width : height of the upright frames (non-square: DV, anamorphic)
    colour: tuple[str, str, str] | None = None  # (matrix, primaries, transfer) as the stream is tagged; None: untagged
    interlaced: bool = False  # the stream says its frames are two fields (TV, camcorders); they are read deinterlaced

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps if self.fps else 0.0


def once_per_file_version(read):
    """`read(path)` run once per file version (absolute path, size, modification time) within a process: every
    stage of a run asks for the same facts, and a file changed in place is read again. `read` gets the absolute
    path."""
    cached = functools.lru_cache(maxsize=32)(lambda path, _size, _mtime_ns: read(path))

    @functools.wraps(read)
    def for_this_version(path):
        stat = os.stat(path)
        return cached(os.path.abspath(os.fspath(path)), stat.st_size, stat.st_mtime_ns)

    return for_this_version


@once_per_file_version
def _ffmpeg_stream_report(path: str) -> str:
    """ffmpeg's description of the input's streams (it has no ffprobe; `-i` alone prints them to stderr). Probing,
    the packet times and the stream summary all read it."""
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", _safe_path(path)],
        capture_output=True,
        text=True,
        errors="replace",
    )
    return proc.stderr


def _rotation_from_report(report: str) -> int:
    """Display rotation recorded in the container (phone videos), in degrees."""
    match = re.search(r"display ?matrix: rotation of (-?[\d.]+) degrees", report, flags=re.IGNORECASE)
    if match:
        return int(round(float(match.group(1)))) % 360
    match = re.search(r"^\s*rotate\s*:\s*(-?\d+)", report, flags=re.MULTILINE)
    if match:
        return int(match.group(1)) % 360
    return 0


class _NoDecordDecoder(MediaError):
    """decord finds no video stream it can decode (no video at all, or a codec its own FFmpeg lacks: AV1), or
    cannot decode its first frame."""


def _sample_aspect_from_report(report: str, rotation: int) -> tuple[int, int]:
    """The video stream's pixel aspect (SAR) as the upright frames have it: a quarter turn swaps its terms."""
    match = re.search(r"Stream #\d+:\d+.*: Video: .*?\bSAR (\d+):(\d+)", report)
    if not match or int(match.group(1)) <= 0 or int(match.group(2)) <= 0:
        return (1, 1)
    aspect = Fraction(int(match.group(1)), int(match.group(2)))
    aspect = 1 / aspect if rotation in (90, 270) else aspect
    return (aspect.numerator, aspect.denominator)


def _colour_from_report(report: str) -> tuple[str, str, str] | None:
    """The video stream's colour tags (matrix, primaries, transfer): "yuv420p(tv, bt709, progressive)" names all
    three at once, "yuv420p10le(tv, bt2020nc/bt2020/arib-std-b67, ...)" (a phone's HLG video) each one; None when the
    stream has no matrix tag ("yuv420p(progressive)")."""
    match = re.search(r"Stream #\d+:\d+.*: Video: .*?\w\((?:tv|pc), ([\w-]+)(?:/([\w-]+)/([\w-]+))?[,)]", report)
    if not match or not re.match(r"(bt|smpte|fcc|ycgco|chroma|ictcp)", match.group(1)):
        return None
    matrix = match.group(1)
    return (matrix, match.group(2) or matrix, match.group(3) or matrix)


def _open_decord(path: str | os.PathLike):
    import decord

    p = _require_file(path, "video file")
    try:
        return decord.VideoReader(_safe_path(p), ctx=decord.cpu(0), num_threads=1)
    except Exception as exc:  # decord raises its own DECORDError / RuntimeError types
        # No stream it can decode (AV1), or no duration (a browser's MediaRecorder WebM): ffmpeg alone may read it.
        error = _NoDecordDecoder if re.search("cannot find video stream|measure duration", str(exc)) else MediaError
        raise error(f"cannot read video frames from {p}: {str(exc).splitlines()[0][:200]} "
                    "(is it a video file? try re-encoding it with ffmpeg)") from None


def probe_video(path: str | os.PathLike, reader=None) -> VideoInfo:
    """Open a video and report fps, frame count, (upright) size, rotation and whether it has audio. A video decord
    cannot decode (AV1), would count wrongly (an edit list) or would serve woven (interlaced) is probed with ffmpeg
    alone (`open_video`)."""
    if reader is None:
        return open_video(path)[1]
    num_frames = len(reader)
    if num_frames == 0:
        raise MediaError(f"video has no frames: {path}")
    fps = float(reader.get_avg_fps())
    if not fps or not math.isfinite(fps) or fps <= 0:
        raise MediaError(f"video has no valid frame rate: {path}")
    try:
        height, width = reader[0].shape[:2]  # decord applies the display rotation, as ffmpeg's autorotate does
    except Exception as exc:  # decord raises its own error types
        raise _NoDecordDecoder(f"cannot decode the first frame of {path}: {str(exc).splitlines()[0][:200]} (a "
                               "damaged file? try re-encoding it with ffmpeg)") from None
    return VideoInfo(os.fspath(path), fps, num_frames, int(width), int(height), *_stream_facts(path))


def open_video(path: str | os.PathLike):
    """(decord's reader, `VideoInfo`), or (None, `VideoInfo` from ffmpeg alone) for a video that

    - decord cannot decode: AV1 (its own FFmpeg has no decoder);
    - hides frames behind an edit list: a phone's trimmed video, or a cut made with `ffmpeg -ss ... -c copy`,
      starts at a frame after its keyframe, and the frames before it are in the file but never shown. decord
      counts and serves them (frame 0 was 1.3 s before the cut on a generated trim), ffmpeg and every player start
      at the cut (`FrameTimes.hidden`);
    - is interlaced (TV, camcorders, DV): decord serves its frames woven (combed wherever anything moves), the pipe
      deinterlaced (`DEINTERLACE`), and decord's FFmpeg failed to decode an interlaced H.264 transport stream that
      ffmpeg reads."""
    _require_file(path, "video file")
    times = read_frame_times(path)  # both facts come from ffmpeg, read once per file version: decord is not opened
    if (times is not None and times.hidden) or _stream_facts(path).interlaced:
        return None, _probe_with_ffmpeg(path, MediaError(f"cannot read video frames from {path}: ffmpeg decodes none "
                                                         "(a damaged file? try re-encoding it with ffmpeg)"))
    try:
        reader = _open_decord(path)
    except _NoDecordDecoder as exc:
        return None, _probe_with_ffmpeg(path, exc)
    try:
        return reader, probe_video(path, reader)
    except _NoDecordDecoder as exc:  # its first frame: decord's FFmpeg failed on H.264 in MPEG-TS that ffmpeg reads
        return None, _probe_with_ffmpeg(path, exc)


class _StreamFacts(NamedTuple):
    """What ffmpeg's report says beyond frames (the `VideoInfo` fields after the size)."""

    rotation: int
    has_audio: bool
    sample_aspect: tuple[int, int]
    colour: tuple[str, str, str] | None
    interlaced: bool


def _stream_facts(path: str | os.PathLike) -> _StreamFacts:
    """All but has_audio from the video stream that is read (`_video_stream`)."""
    report = _ffmpeg_stream_report(os.fspath(path))
    video = _video_stream(report)
    lines = video[1] if video is not None else ""
    rotation = _rotation_from_report(lines)
    has_audio = bool(re.search(r"Stream #\d+:\d+.*: Audio:", report))
    # MPEG-2 and H.264 streams name their field order; DV (SD) is interlaced by its format and does not.
    interlaced = bool(re.search(r": Video: (dvvideo\b|.*\b(top|bottom)( coded)? first\b)", lines))
    return _StreamFacts(rotation, has_audio, _sample_aspect_from_report(lines, rotation), _colour_from_report(lines),
                        interlaced)


_STREAM_LINE = re.compile(r"^(\s*)Stream #0:(\d+)\S*: (\w+): ")


def _video_stream(report: str) -> tuple[int, str] | None:
    """The video stream every reader reads, as (its index in the file, its lines of ffmpeg's report), or None.

    The first one marked default, else the first, leaving out cover pictures: a downloaded video may carry its
    thumbnail as a video stream of one frame ("attached pic"; in MKV a plain one-frame track, not marked default),
    sometimes before the video itself. decord's FFmpeg chooses alike (`av_find_best_stream`: the default stream
    first, then one of several frames), so the pipe, the packet times and the tags describe the frames it counts."""
    streams, lines = [], report.splitlines()
    for k, line in enumerate(lines):
        match = _STREAM_LINE.match(line)
        if not match or match.group(3) != "Video" or "(attached pic)" in line:
            continue
        end = k + 1
        while end < len(lines) and len(lines[end]) - len(lines[end].lstrip()) > len(match.group(1)):
            end += 1
        streams.append((int(match.group(2)), "\n".join(lines[k:end]), "(default)" in line))
    if not streams:
        return None
    index, text, _ = next((s for s in streams if s[2]), streams[0])
    return index, text


def video_map(path: str | os.PathLike) -> str:
    """ffmpeg's `-map` specifier of the video stream that is read (`_video_stream`)."""
    video = _video_stream(_ffmpeg_stream_report(os.fspath(path)))
    return f"0:{video[0]}" if video is not None else "0:v:0"


def _probe_with_ffmpeg(path: str | os.PathLike, decord_error: MediaError) -> VideoInfo:
    """`VideoInfo` from ffmpeg alone, for a video decord cannot open: decord 0.6's own FFmpeg has no AV1 decoder
    (no dav1d), and AV1 is what phones and video sites increasingly deliver, while the ffmpeg binary decodes it.
    Frame count and frame rate come from the packets' times (`read_frame_times`), the upright size from one frame
    ffmpeg decodes. Raises `decord_error` when ffmpeg finds no video either. Only for a stream decord has no decoder
    for: a file decord opens but cannot read (a truncated download) stays an error, not a shorter video."""
    times = read_frame_times(path)
    size = _first_frame_size(path) if times is not None else None
    if times is None or size is None or times.end <= times.times[0]:
        raise decord_error
    fps = float(len(times.times) / (times.end - times.times[0]))
    return VideoInfo(os.fspath(path), fps, len(times.times), size[0], size[1], *_stream_facts(path))


@once_per_file_version
def _first_frame_size(path: str) -> tuple[int, int] | None:
    """(width, height) of the first frame as ffmpeg delivers it (display rotation applied), from its PPM header;
    None when ffmpeg decodes no frame. Decoded once per file version (every reader of a run opens the file)."""
    proc = subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", _safe_path(path),
         "-map", video_map(path), "-frames:v", "1", "-f", "image2pipe", "-c:v", "ppm", "pipe:1"],
        capture_output=True,
    )
    match = re.match(rb"P6\s+(\d+)\s+(\d+)\s", proc.stdout)
    return (int(match.group(1)), int(match.group(2))) if proc.returncode == 0 and match else None


# ----------------------------------------------------------------------------------------------- frames


def _round_half_away(value: Fraction) -> int:
    """Nearest integer, halves away from zero: ffmpeg's AV_ROUND_NEAR_INF, which its fps filter uses."""
    magnitude = (2 * abs(value.numerator) + value.denominator) // (2 * value.denominator)
    return magnitude if value >= 0 else -magnitude


def frames_on_grid(times: Sequence[Fraction], end: Fraction, target_fps: float) -> np.ndarray:
    """Source frame shown by each output frame of a `target_fps` grid starting at t = 0: ffmpeg's `fps` filter.

    `times` are the source frames' presentation times in seconds (in order, relative to the file's start, as
    ffmpeg counts them), `end` the time the last frame stops showing. Like `fps=<target>:start_time=0`, each source
    frame is moved to the nearest grid slot (halves away from zero); output slot k shows the last source frame
    whose slot is <= k, and the first frame before that (a video stream that starts after its audio is held on
    its first frame); the output ends at the slot nearest to `end`.
    """
    if len(times) == 0:
        return np.zeros(0, dtype=np.int64)
    rate = Fraction(target_fps).limit_denominator(1_001_000)
    slots = np.array([_round_half_away(t * rate) for t in times], dtype=np.int64)
    count = max(_round_half_away(end * rate), 0)
    # The last frame whose slot is <= k (later frames win a shared slot); frame 0 before the first slot.
    shown = np.searchsorted(slots, np.arange(count), side="right") - 1
    return np.maximum(shown, 0).astype(np.int64)


def resample_indices(num_frames: int, source_fps: float, target_fps: float) -> np.ndarray:
    """Source frame index for each output frame of a constant-frame-rate video, by ffmpeg's `fps` rule."""
    if num_frames <= 0:
        return np.zeros(0, dtype=np.int64)
    period = 1 / Fraction(source_fps).limit_denominator(1_001_000)
    return frames_on_grid([i * period for i in range(num_frames)], num_frames * period, target_fps)


@dataclass(frozen=True)
class FrameTimes:
    """Presentation time of every video frame (seconds from the file's start, as ffmpeg counts) and its end."""

    times: tuple[Fraction, ...]
    end: Fraction
    hidden: int = 0  # frames in the stream that an edit list hides (decord counts them, ffmpeg never shows them)

    def grid(self, target_fps: float) -> np.ndarray:
        """Source frame index for each output frame at `target_fps` (see `frames_on_grid`)."""
        return frames_on_grid(self.times, self.end, target_fps)


@once_per_file_version
def read_frame_times(path: str | os.PathLike) -> FrameTimes | None:
    """Every video frame's presentation time, from the packets (no decoding), in presentation order.

    Phones record variable frame rates, and edited or downloaded files often start their video after their audio:
    only the timestamps say which frame is on screen when. None when ffmpeg lists no video packets. Read once per
    file version: every stage of a run asks for it."""
    proc = subprocess.run(  # a stream copy's times count from the file's start, as the decoded frames' do
        [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", _safe_path(path),
         "-map", video_map(path), "-c", "copy", "-f", "framecrc", "-"],
        capture_output=True, text=True, errors="replace",
    )
    base = re.search(r"^#tb 0: (\d+)/(\d+)", proc.stdout, flags=re.MULTILINE)
    rows = [line.split(",") for line in proc.stdout.splitlines() if line and not line.startswith("#")]
    if base is None or not rows:
        return None
    tick = Fraction(int(base.group(1)), int(base.group(2)))
    packets = sorted((int(row[2]), int(row[3]), _discarded(row)) for row in rows
                     if row[2].strip().lstrip("-").isdigit())
    shown = [(pts, duration) for pts, duration, discarded in packets if not discarded]
    if not shown:
        return None
    times = tuple(pts * tick for pts, _ in shown)
    last_pts, last_duration = shown[-1]
    return FrameTimes(times, (last_pts + max(last_duration, 0)) * tick, len(packets) - len(shown))


def _discarded(row: list[str]) -> bool:
    """Whether a `framecrc` packet row carries the discard flag (0x4): a frame an edit list hides."""
    flags = row[6].strip() if len(row) > 6 else ""
    return flags.startswith("F=") and bool(int(flags[2:], 16) & 0x4)


def frame_map(path: str | os.PathLike, target_fps: float, num_frames: int | None = None,
              source_fps: float | None = None) -> np.ndarray:
    """Source frame index for each output frame of `path` at `target_fps`: ffmpeg's `fps=<target>:start_time=0`.

    The one rule every stage uses (inference, the speaker pre-pass, data processing, training clips). Indices count
    the frames ffmpeg shows (a file whose edit list hides frames is read with ffmpeg alone: `open_video`). When the
    packets cannot be listed, or disagree with the decoder's frame count (`num_frames`), the frames are assumed
    evenly spaced at `source_fps`."""
    times = read_frame_times(path)
    if times is not None and (num_frames is None or len(times.times) == num_frames):
        return np.minimum(times.grid(target_fps), len(times.times) - 1)
    if num_frames is None or source_fps is None:
        info = probe_video(path)
        num_frames, source_fps = info.num_frames, info.fps
    return resample_indices(num_frames, source_fps, target_fps)


# How far ahead of the sequential decoder a request may start and still be read (and skipped) from the
# pipe instead of a random-access seek; and how close to frame 0 a request must start to restart the pipe.
SEQUENTIAL_SKIP_MAX = 250
SEQUENTIAL_RESTART_MAX = 48
# Requests that go backward (ping-pong) are served from a block of this many frames decoded forward.
BACKWARD_BLOCK_FRAMES = 32


# Frames that are two fields (their decoder flags them: interlaced TV, DV and camcorder video) are deinterlaced into
# one frame each, by bwdif (motion adaptive, as yadif but sharper); progressive frames pass through untouched (bit
# for bit, tested). A woven frame shows combs wherever anything moves: the mouth, the jaw, the face's edge.
DEINTERLACE = "bwdif=mode=send_frame:parity=auto:deint=interlaced"


class _FramePipe:
    """Source frames in order from an ffmpeg child (`rawvideo rgb24` on stdout), starting at frame 0.

    Memory is one pipe buffer: ffmpeg blocks when we stop reading. decord, by contrast, keeps decoding
    ahead into an unbounded queue while the caller is busy (dmlc/decord#157, #208): at 1080p that queue
    held the rest of the video (6 MB a frame) while the pipeline restored or denoised. Frames of 8-bit video are
    bit-identical to decord's (same swscale defaults), checked by the tests; 10-bit video (phones' HDR) converts a
    little differently (0.14 levels apart on average on a 10-bit HLG clip), which matters only where decord serves a
    request the pipe could not.
    """

    def __init__(self, path: str, width: int, height: int, start_index: int = 0, start_seconds: float = 0.0,
                 scale_to: tuple[int, int] | None = None, pix_fmt: str = "rgb24"):
        if scale_to is not None:
            width, height = scale_to
        self.frame_bytes = width * height * 3
        self.shape = (height, width, 3)
        self.position = start_index  # source index of the next frame the pipe delivers
        seek = ["-ss", f"{start_seconds:.6f}"] if start_index else []
        scale = [f"scale={width}:{height}:flags=bilinear"] if scale_to is not None else []
        # Small analysis frames need no deblocking: skipping the loop filter decodes ~25 % faster.
        fast = ["-skip_loop_filter", "all"] if scale_to is not None else []
        cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", *seek, *fast, "-i", _safe_path(path),
               "-map", video_map(path), "-an", "-sn", "-dn", "-fps_mode", "passthrough",
               "-vf", ",".join([DEINTERLACE, *scale]), "-f", "rawvideo", "-pix_fmt", pix_fmt, "pipe:1"]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, bufsize=0)

    def _read_into(self, out: np.ndarray) -> bool:
        view, got = memoryview(out).cast("B"), 0
        while got < self.frame_bytes:
            n = self._proc.stdout.readinto(view[got:])
            if not n:
                return False
            got += n
        self.position += 1
        return True

    def read(self, source_indices: np.ndarray) -> np.ndarray | None:
        """Frames at non-decreasing `source_indices` (all >= position); None if the stream ends first."""
        out = np.empty((len(source_indices), *self.shape), dtype=np.uint8)
        scratch = None
        for k, index in enumerate(source_indices):
            if k and index == source_indices[k - 1]:
                out[k] = out[k - 1]  # frame-rate up-conversion shows a frame twice
                continue
            while self.position < index:  # frames the caller skips (down-conversion, a forward jump)
                scratch = np.empty(self.shape, dtype=np.uint8) if scratch is None else scratch
                if not self._read_into(scratch):
                    return None
            if not self._read_into(out[k]):
                return None
        return out

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._proc.stdout.close()


class VideoReader(ClosesOnExit):
    """A video opened for streaming: `info` plus chunked access at the source or a target frame rate.

    Requests that move forward (the face pass, the generation pass, loop playback) are served from one
    sequential ffmpeg pipe, so memory stays at one chunk whatever the video's length. Requests that move
    backward (ping-pong playback) are served from a block of `BACKWARD_BLOCK_FRAMES` frames decoded forward
    from the keyframe before it. decord only probes the file and lists keyframes; its decoder is parked at
    frame 0 so that it cannot decode ahead in the background. A file decord cannot decode, count or serve as ffmpeg
    shows it (AV1, an edit list, interlaced: `open_video`) is read with ffmpeg alone: probed by
    `_probe_with_ffmpeg`, and any request that the sequential pipe or a block cannot serve decoded from a seek to
    its first frame. Use as a context manager, or call `close()`, to end the
    ffmpeg child.
    """

    def __init__(self, path: str | os.PathLike, target_fps: float | None = None):
        self.path = os.fspath(path)
        self._reader, self.info = open_video(path)  # no decord reader: ffmpeg alone
        self._park_decord()
        self.target_fps = float(target_fps) if target_fps else self.info.fps
        if target_fps:  # frames chosen by presentation time, as ffmpeg's fps filter does
            self.indices = frame_map(self.path, self.target_fps, self.info.num_frames, self.info.fps)
        else:  # every source frame once, in order
            self.indices = np.arange(self.info.num_frames, dtype=np.int64)
        self._pipe: _FramePipe | None = None
        self._block: tuple[int, np.ndarray] | None = None  # (first source index, frames) for backward reads
        self._keyframes: np.ndarray | None = None

    def __len__(self) -> int:
        """Number of frames delivered (after frame-rate conversion)."""
        return len(self.indices)

    @property
    def on_grid(self) -> bool:
        """Whether output frame k is source frame k for every k: the file is already at the target rate, with
        no start offset and no variable spacing, so its stream can be used as it is."""
        return len(self.indices) == self.info.num_frames and bool(np.all(self.indices == np.arange(len(self))))

    @property
    def fps(self) -> float:
        return self.target_fps

    def get_frames(self, output_indices: Iterable[int]) -> np.ndarray:
        """Frames at the given output positions, (n, h, w, 3) RGB uint8."""
        src = self.indices[np.asarray(list(output_indices), dtype=np.int64)]
        if len(src) == 0:
            return np.zeros((0, self.info.height, self.info.width, 3), dtype=np.uint8)
        if np.all(np.diff(src) >= 0):
            pipe = self._pipe_for(int(src[0]))
            if pipe is not None:
                self._block = None
                frames = pipe.read(src)
                if frames is not None:
                    return frames
                self._close_pipe()  # the container promised more frames than ffmpeg decoded: let decord try
        elif int(src.max() - src.min()) < BACKWARD_BLOCK_FRAMES * 4:
            frames = self._from_block(src)
            if frames is not None:
                return frames
        if self._reader is None:
            frames = self._from_seek(src)
            if frames is None:
                raise MediaError(f"cannot decode frames {int(src.min())}-{int(src.max())} of {self.path}: ffmpeg "
                                 "delivered fewer frames than the file lists (a damaged file? try re-encoding it)")
            return frames
        frames = self._reader.get_batch(src.tolist()).asnumpy()
        self._park_decord()
        return frames

    def _from_block(self, src: np.ndarray) -> np.ndarray | None:
        """Frames of a backward (or shuffled) request, from a small block decoded forward."""
        lo, hi = int(src.min()), int(src.max()) + 1
        if self._block is None or lo < self._block[0] or hi > self._block[0] + len(self._block[1]):
            self._block = None
            start = max(0, min(lo, hi - BACKWARD_BLOCK_FRAMES))
            frames = self._decoded_from(start, np.arange(start, hi))
            if frames is None:
                return None
            self._block = (start, frames)
        first, frames = self._block
        return frames[src - first]

    def _from_seek(self, src: np.ndarray) -> np.ndarray | None:
        """Frames of any request (sorted, decoded forward from the first), for a file without decord."""
        order = np.argsort(src, kind="stable")
        frames = self._decoded_from(int(src[order[0]]), src[order])
        if frames is None:
            return None
        out = np.empty_like(frames)
        out[order] = frames
        return out

    def _decoded_from(self, start: int, sources: np.ndarray) -> np.ndarray | None:
        """Frames at non-decreasing `sources` (all >= `start`), from a pipe that seeks to `start`'s keyframe (with
        decord, which lists them) or to `start` itself (ffmpeg alone, by its time); None if ffmpeg ends first.

        Seeking a quarter frame before a frame's time makes ffmpeg start at the keyframe before it and drop every
        frame earlier than that time, so the first frame delivered is exactly the one sought. A seek that delivers
        too few frames (an MPEG-TS file has no index: with a keyframe only at its start, ffmpeg delivered none) is
        followed by a decode from the start."""
        if self._reader is not None:
            if self._keyframes is None:
                self._keyframes = np.asarray(self._reader.get_key_indices(), dtype=np.int64)
            keys = self._keyframes[self._keyframes <= start]
            first = int(keys[-1]) if len(keys) else 0
            seconds = float(self._reader.get_frame_timestamp(first)[0]) if first else 0.0
        else:
            first = start
            seconds = float(read_frame_times(self.path).times[first]) if first else 0.0
        seconds = seconds - 0.25 / self.info.fps if first else 0.0
        frames = self._read_once(first, max(seconds, 0.0), sources)
        return frames if frames is not None or not first else self._read_once(0, 0.0, sources)

    def _read_once(self, first: int, seconds: float, sources: np.ndarray) -> np.ndarray | None:
        """Frames at `sources` from a pipe started at source frame `first`, found at `seconds`."""
        pipe = _FramePipe(self.path, self.info.width, self.info.height, first, seconds)
        try:
            return pipe.read(sources)
        finally:
            pipe.close()
            self._park_decord()

    def _pipe_for(self, first: int) -> _FramePipe | None:
        """The sequential pipe positioned at or before `first`, (re)started at frame 0 when that is cheap."""
        if self._pipe is not None and 0 <= first - self._pipe.position <= SEQUENTIAL_SKIP_MAX:
            return self._pipe
        if first <= SEQUENTIAL_RESTART_MAX:
            self._close_pipe()
            self._pipe = _FramePipe(self.path, self.info.width, self.info.height)
            return self._pipe
        return None

    def _park_decord(self) -> None:
        """Stop decord's background read-ahead (it decodes the rest of the video otherwise)."""
        if self._reader is not None:
            self._reader.seek(0)

    def _close_pipe(self) -> None:
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None

    def close(self) -> None:
        self._close_pipe()

    def __del__(self) -> None:
        try:
            self._close_pipe()
        except Exception:  # interpreter shutdown: the child dies with us anyway
            pass

    def iter_chunks(self, chunk_size: int = 16, start: int = 0) -> Iterator[np.ndarray]:
        """Consecutive chunks of at most `chunk_size` frames (the last may be shorter)."""
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        for begin in range(start, len(self), chunk_size):
            yield self.get_frames(range(begin, min(begin + chunk_size, len(self))))


def iter_small_frames(path: str | os.PathLike, width: int, height: int, pix_fmt: str = "rgb24") -> Iterator[np.ndarray]:
    """Every source frame scaled down to width x height by ffmpeg (for analysis such as shot detection).

    Scaling inside ffmpeg converts straight from the decoder's YUV to the small RGB/BGR image, so a 1080p
    video costs little more than its decoding (done without the deblocking filter, which such small frames
    do not need)."""
    pipe = _FramePipe(os.fspath(_require_file(path, "video file")), width, height, scale_to=(width, height),
                      pix_fmt=pix_fmt)
    try:
        while True:
            frame = np.empty(pipe.shape, dtype=np.uint8)
            if not pipe._read_into(frame):
                return
            yield frame
    finally:
        pipe.close()


def iter_frames(path: str | os.PathLike, chunk_size: int = 16, target_fps: float | None = None) -> Iterator[np.ndarray]:
    """Stream a video as RGB uint8 chunks (n, h, w, 3), optionally converted to `target_fps`."""
    with VideoReader(path, target_fps=target_fps) as reader:
        yield from reader.iter_chunks(chunk_size)


# ----------------------------------------------------------------------------------------------- audio


def read_audio(path: str | os.PathLike, sample_rate: int = 16000) -> np.ndarray:
    """Audio track of any container as float32 mono at `sample_rate` (int16 PCM / 32768, like whisper's loader)."""
    import ffmpeg

    p = _require_file(path, "audio file")
    # first_pts=0: an audio stream that starts after the file's start is preceded by that much silence, so sample 0
    # is t = 0 of the file, as it is for the video frames (frame_map).
    stream = ffmpeg.input(_safe_path(p)).filter("aresample", first_pts=0).output(
        "pipe:", format="s16le", acodec="pcm_s16le", ac=1, ar=sample_rate)
    try:
        out, _ = stream.global_args("-nostdin", "-hide_banner", "-loglevel", "error", "-vn").run(
            cmd=ffmpeg_exe(), capture_stdout=True, capture_stderr=True
        )
    except ffmpeg.Error as exc:
        message = exc.stderr.decode(errors="replace").strip()
        if "does not contain any stream" in message or "matches no streams" in message:
            raise MediaError(f"no audio stream in {p}; give a file with an audio track") from None
        raise MediaError(f"cannot read audio from {p}: {message.splitlines()[-1][:300] if message else exc}") from None
    samples = np.frombuffer(out, dtype=np.int16)
    if samples.size == 0:
        raise MediaError(f"no audio samples in {p}; give a file with an audio track")
    return samples.astype(np.float32) / 32768.0


def write_wav(path: str | os.PathLike, samples: np.ndarray, sample_rate: int) -> None:
    """Write float samples in [-1, 1] (mono (n,) or (n, channels)) as 16-bit PCM WAV."""
    import soundfile

    soundfile.write(os.fspath(path), np.asarray(samples, dtype=np.float32), sample_rate, subtype="PCM_16")


# ----------------------------------------------------------------------------------------------- writing


def _partial_path(final: Path) -> Path:
    """A temp name in the output's folder (same filesystem, so the final rename is atomic), same extension."""
    fd, name = tempfile.mkstemp(prefix=f".{final.stem[:40]}.", suffix=f".partial{final.suffix}", dir=final.parent)
    os.close(fd)
    return Path(name)


# `scale`'s name for the matrix a stream is tagged with (the other tags' names are setparams' own).
SCALE_MATRIX = {"bt2020nc": "bt2020", "bt2020c": "bt2020", "bt470bg": "bt470", "smpte170m": "smpte170m",
                "smpte240m": "smpte240m", "fcc": "fcc", "bt709": "bt709"}


def _colour_filter(like: VideoInfo | None) -> str:
    """Our RGB frames into yuv420p so that a player shows the output's pixels as it shows the input's.

    Our readers decode with the matrix a stream is tagged with (BT.601 when untagged), so the output goes back
    through that matrix, tagged as the input was (`setparams` tags the frames; the encoder writes it into the
    stream): a phone's BT.709 video stays BT.709 (ffmpeg's default was BT.601, untagged, which players show as
    BT.709 in HD: saturated colours 25-38 levels off over the whole frame), a phone's HLG HDR video keeps its
    BT.2020 matrix, primaries and HLG transfer (tagged as SDR it looked flat and pale), and an untagged input gives
    an untagged output in BT.601, as before. Frames of no input video (`like` None) are tagged BT.709.
    docs/benchmarks.md "Real footage: formats and colours"."""
    colour = ("bt709",) * 3 if like is None else like.colour
    if colour is None or colour[0] not in SCALE_MATRIX:  # ffmpeg's own conversion: BT.601, left untagged
        return "format=yuv420p"
    matrix, primaries, transfer = colour
    tags = [f"colorspace={matrix}", "range=tv"]
    tags += [f"color_primaries={primaries}"] if primaries != "unknown" else []
    tags += [f"color_trc={transfer}"] if transfer != "unknown" else []
    return f"scale=out_color_matrix={SCALE_MATRIX[matrix]}:out_range=tv,format=yuv420p,setparams={':'.join(tags)}"


class VideoWriter:
    """Incremental H.264 (yuv420p) writer with optional AAC audio, written atomically.

    Frames are pushed chunk by chunk into one ffmpeg process. The file appears at `path` only when
    `close()` succeeds; on any error (or leaving a `with` block by exception) the partial file is removed.
    Odd widths/heights are padded by one pixel (yuv420p needs even sizes). With `audio_duration` the audio
    track lasts exactly that long: a longer audio is cut, a shorter one padded with silence. `like`: the input
    video (`probe_video`), whose look the output keeps: its pixel aspect (non-square DV or anamorphic pixels are
    shown at the input's display aspect, not stretched) and its colour tags (`_colour_filter`).
    """

    def __init__(self, path: str | os.PathLike, fps: float, audio_path: str | os.PathLike | None = None,
                 crf: int = 18, preset: str = "medium", audio_bitrate: str = "192k",
                 audio_duration: float | None = None, like: VideoInfo | None = None):
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise MediaError(f"output folder does not exist: {self.path.parent}")
        if audio_path is not None:
            _require_file(audio_path, "audio file")
        self.fps = float(fps)
        self.audio_path = audio_path
        self.audio_duration = audio_duration  # the audio track's length: trimmed or padded with silence (None: as is)
        self.crf, self.preset, self.audio_bitrate = crf, preset, audio_bitrate
        self.like = like  # the input video, whose pixel aspect and colour tags the output keeps
        self._proc: subprocess.Popen | None = None
        self._tmp: Path | None = None
        self._size: tuple[int, int] | None = None

    def _start(self, height: int, width: int) -> None:
        self._size = (height, width)
        self._tmp = _partial_path(self.path)
        cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", f"{self.fps}", "-i", "pipe:0"]
        if self.audio_path is not None:
            if self.audio_duration is not None:
                cmd += ["-t", f"{self.audio_duration:.6f}"]
            cmd += ["-i", _safe_path(self.audio_path), "-map", "0:v:0", "-map", "1:a:0",
                    "-c:a", "aac", "-b:a", self.audio_bitrate]
            if self.audio_duration is not None:  # a shorter audio ends in silence, so both streams end together
                cmd += ["-af", f"apad=whole_dur={self.audio_duration:.6f}"]
        sar = "{}/{}".format(*(self.like.sample_aspect if self.like is not None else (1, 1)))
        colour = _colour_filter(self.like)
        cmd += ["-vf", f"pad=ceil(iw/2)*2:ceil(ih/2)*2,{colour},setsar={sar}", "-c:v", "libx264",
                "-preset", self.preset, "-crf", str(self.crf), "-pix_fmt", "yuv420p", "-movflags", "+faststart",
                str(self._tmp)]
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._stderr)

    def write(self, frames: np.ndarray) -> None:
        """Append frames: (n, h, w, 3) or a single (h, w, 3), RGB uint8."""
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be (n, h, w, 3) RGB, got shape {frames.shape}")
        if frames.dtype != np.uint8:
            raise ValueError(f"frames must be uint8, got {frames.dtype}")
        if self._proc is None:
            self._start(*frames.shape[1:3])
        elif frames.shape[1:3] != self._size:
            raise ValueError(f"frame size changed from {self._size} to {frames.shape[1:3]}")
        try:
            self._proc.stdin.write(memoryview(np.ascontiguousarray(frames)).cast("B"))  # no copy of the chunk
        except BrokenPipeError:
            self._fail("ffmpeg stopped accepting frames")

    def _error_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace").strip()[-1000:]

    def _fail(self, what: str) -> None:
        code, detail = None, ""
        if self._proc is not None:
            try:
                code = self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            detail = self._error_text()
        self.abort()
        if code == -signal.SIGXFSZ or any(m in detail for m in OUT_OF_SPACE_MESSAGES):
            raise OutputWriteError(f"could not write {self.path}: the disk is full or a file-size limit was reached; "
                                   "free some space (or choose another output folder) and run again. "
                                   "No partial file was left.")
        raise RuntimeError(f"writing {self.path} failed: {what}. ffmpeg said: {detail}")

    def close(self) -> Path:
        """Finish encoding and move the file into place. Returns the final path."""
        if self._proc is None:
            raise MediaError(f"no frames were written to {self.path}; nothing to save")
        try:
            self._proc.stdin.close()
        except BrokenPipeError:
            self._fail("ffmpeg stopped accepting frames")
        code = self._proc.wait()
        if code != 0:
            self._fail(f"ffmpeg exited with code {code}")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self._tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the output normal file permissions
        os.replace(self._tmp, self.path)
        self._stderr.close()
        self._proc = None
        return self.path

    def abort(self) -> None:
        """Stop ffmpeg and delete the partial file; the output path is left untouched."""
        if self._proc is not None:
            try:
                self._proc.stdin.close()
            except OSError:
                pass
            self._proc.kill()
            self._proc.wait()
            self._proc = None
            self._stderr.close()
        if self._tmp is not None and self._tmp.exists():
            self._tmp.unlink()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


@dataclass(frozen=True)
class StreamSummary:
    """Stream facts of a finished file, read back with ffmpeg (used by tests and by the pipeline's summary)."""

    video_codec: str | None
    audio_codec: str | None
    duration: float


def describe_streams(path: str | os.PathLike) -> StreamSummary:
    report = _ffmpeg_stream_report(os.fspath(_require_file(path, "media file")))
    stream = _video_stream(report)
    video = re.search(r": Video: (\w+)", stream[1]) if stream is not None else None
    audio = re.search(r"Stream #\d+:\d+.*: Audio: (\w+)", report)
    dur = re.search(r"Duration: (\d+):(\d+):([\d.]+)", report)
    seconds = int(dur.group(1)) * 3600 + int(dur.group(2)) * 60 + float(dur.group(3)) if dur else 0.0
    return StreamSummary(video.group(1) if video else None, audio.group(1) if audio else None, seconds)
