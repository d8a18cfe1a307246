"""Writing clips: frame-exact cuts with their audio, stream-copy remuxes, and audio shifts.

Cuts go through latentsync.utils.media (decord frames in, one ffmpeg H.264/AAC writer out), so a clip of
frames [start, end) gets exactly the audio samples of that time span and every clip starts at t = 0.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from latentsync.utils.media import VideoWriter, describe_streams, ffmpeg_exe, video_map, write_wav


def audio_span(audio: np.ndarray, start_frame: int, end_frame: int, fps: float, sample_rate: int) -> np.ndarray:
    """Samples covering frames [start_frame, end_frame), zero-padded where the track is shorter."""
    per_frame = sample_rate / fps
    first, last = int(round(start_frame * per_frame)), int(round(end_frame * per_frame))
    piece = audio[first:last]
    if len(piece) < last - first:
        piece = np.concatenate([piece, np.zeros(last - first - len(piece), dtype=audio.dtype)])
    return piece


COPYABLE_CODECS = ("h264",)


def can_keep_video_stream(reader, start: int, end: int) -> bool:
    """Whether frames [start, end) are the whole H.264 stream, unconverted: then no re-encode is needed. Not for an
    interlaced stream: its frames are read deinterlaced (`media.DEINTERLACE`), a copy would keep them woven."""
    return (start == 0 and end == len(reader) and reader.on_grid and not reader.info.interlaced
            and describe_streams(reader.path).video_codec in COPYABLE_CODECS)


def write_clip(reader, start: int, end: int, audio: np.ndarray, sample_rate: int, out_path: Path,
               encoding, chunk_size: int) -> Path:
    """Frames [start, end) of `reader` plus the matching audio as an H.264 + AAC file at `out_path`.

    When the clip is the whole H.264 video (a single shot, a single segment), the video stream is copied
    and only the audio is cut and encoded: same frames, no generation loss, a fraction of the time.
    """
    if not 0 <= start < end <= len(reader):
        raise ValueError(f"clip [{start}, {end}) is outside the video's {len(reader)} frames")
    if can_keep_video_stream(reader, start, end):
        return replace_audio(Path(reader.path), audio_span(audio, start, end, reader.fps, sample_rate),
                             sample_rate, out_path, encoding)
    wav = out_path.with_suffix(".wav")
    write_wav(wav, audio_span(audio, start, end, reader.fps, sample_rate), sample_rate)
    try:
        with VideoWriter(out_path, reader.fps, audio_path=wav, crf=encoding.crf, preset=encoding.preset,
                         audio_bitrate=encoding.audio_bitrate, like=reader.info) as writer:  # its tags, as a copy
            for begin in range(start, end, chunk_size):
                writer.write(reader.get_frames(range(begin, min(begin + chunk_size, end))))
    finally:
        wav.unlink(missing_ok=True)
    return out_path


def write_frames(frames_iter, fps: float, audio: np.ndarray, sample_rate: int, out_path: Path, encoding) -> Path:
    """Encode an iterable of RGB chunks with a float audio track (used for aligned faces)."""
    wav = out_path.with_suffix(".wav")
    write_wav(wav, audio, sample_rate)
    try:
        with VideoWriter(out_path, fps, audio_path=wav, crf=encoding.crf, preset=encoding.preset,
                         audio_bitrate=encoding.audio_bitrate) as writer:
            for chunk in frames_iter:
                writer.write(chunk)
    finally:
        wav.unlink(missing_ok=True)
    return out_path


def run_ffmpeg(args: list[str], what: str) -> None:
    """Run ffmpeg with an argument list (never a shell); raise with ffmpeg's own message on failure."""
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed while {what}: {proc.stderr.strip()[-800:]}")


def replace_audio(video_path: Path, audio: np.ndarray, sample_rate: int, out_path: Path, encoding) -> Path:
    """Copy the video stream of `video_path` untouched and give it `audio` (float mono) as AAC."""
    wav = out_path.with_suffix(".wav")
    write_wav(wav, audio, sample_rate)
    try:
        run_ffmpeg(["-i", str(Path(video_path).resolve()), "-i", str(wav.resolve()), "-map", video_map(video_path),
                    "-map", "1:a:0", "-c:v", "copy", "-c:a", "aac", "-b:a", str(encoding.audio_bitrate),
                    "-movflags", "+faststart", str(out_path.resolve())], f"muxing new audio into {video_path}")
    finally:
        wav.unlink(missing_ok=True)
    return out_path


def shift_audio(audio: np.ndarray, frames: int, fps: float, sample_rate: int) -> np.ndarray:
    """Delay (frames > 0) or advance (frames < 0) a track by whole video frames, keeping its length.

    A delay pads silence at the start and drops the tail; an advance drops the head and pads the tail,
    the same as ffmpeg's `-itsoffset frames/fps` on the audio input followed by trimming to the video.
    """
    count = int(round(abs(frames) * sample_rate / fps))
    if count == 0:
        return audio.copy()
    silence = np.zeros(min(count, len(audio)), dtype=audio.dtype)
    if frames > 0:
        return np.concatenate([silence, audio[: len(audio) - len(silence)]])
    return np.concatenate([audio[len(silence):], silence])
