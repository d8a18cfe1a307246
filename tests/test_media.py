"""Media I/O round trips on fixtures generated here (moving pattern + sine tone), and the real demo clip."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, replace

import numpy as np
import pytest

from latentsync.utils import media
from tests.helpers import shared_file, write_video


def moving_pattern(num_frames: int, height: int = 48, width: int = 64) -> np.ndarray:
    """Frames whose content encodes the frame index: a bright bar moves right one step per frame."""
    frames = np.full((num_frames, height, width, 3), 40, dtype=np.uint8)
    for i in range(num_frames):
        x = (i * 2) % (width - 4)
        frames[i, :, x : x + 4] = 220
        frames[i, :4, :, 0] = (i * 7) % 256  # a per-frame colour stripe
    return frames


def bar_position(frame: np.ndarray) -> int:
    column_brightness = frame[8:, :, 1].astype(float).mean(axis=0)
    return int(np.argmax(column_brightness > 130))


def sine(seconds: float, rate: int, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    return np.stack([tone] * channels, axis=1) if channels > 1 else tone


@pytest.fixture()
def tone_wav(tmp_path):
    path = tmp_path / "tone.wav"
    media.write_wav(path, sine(2.0, 44100, channels=2), 44100)
    return path


def test_round_trip_preserves_count_and_fps(tmp_path):
    frames = moving_pattern(20)
    out = write_video(tmp_path / "v.mp4", [frames[:7], frames[7:]], fps=25)
    info = media.probe_video(out)
    assert (info.num_frames, info.fps, info.width, info.height) == (20, 25.0, 64, 48)
    decoded = np.concatenate(list(media.iter_frames(out, chunk_size=6)))
    assert decoded.shape == frames.shape
    assert [bar_position(f) for f in decoded] == [bar_position(f) for f in frames]
    assert np.abs(decoded.astype(int) - frames.astype(int)).mean() < 3


def test_chunks_have_requested_size(tmp_path):
    out = write_video(tmp_path / "v.mp4", [moving_pattern(20)], fps=25)
    sizes = [len(c) for c in media.iter_frames(out, chunk_size=8)]
    assert sizes == [8, 8, 4]


def ffmpeg_fps_choice(path, fps: float = 25, video_filter: str = "null") -> np.ndarray:
    """The frames ffmpeg's own `fps=<fps>:start_time=0` filter delivers (the reference the official converts with),
    after `video_filter`."""
    info = media.probe_video(path)
    raw = subprocess.run([media.ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:v:0", "-vf",
                          f"{video_filter},fps={fps}:start_time=0", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, info.height, info.width, 3)


def generated_clip(tmp_path, name: str, video_filters: str, rate: str = "25", seconds: float = 3,
                   video_offset: float | None = None, codec: tuple[str, ...] = ("libx264",)) -> str:
    """A testsrc2 clip (a frame counter and moving shapes: every frame differs) with the given timestamps, encoded
    with `codec` (the encoder and its options)."""
    out = tmp_path / name
    source = ["-f", "lavfi", "-i", f"testsrc2=size=96x64:rate={rate}:duration={seconds}"]
    args = [*source, "-vf", video_filters, "-fps_mode", "vfr", "-c:v", *codec, "-pix_fmt", "yuv420p"]
    if video_offset is not None:  # the video stream starts `video_offset` s after the audio stream
        plain = tmp_path / f"plain_{name}"
        subprocess.run([media.ffmpeg_exe(), "-v", "error", "-y", *args, str(plain)], check=True)
        args = ["-itsoffset", str(video_offset), "-i", str(plain), "-f", "lavfi", "-i",
                f"sine=duration={seconds + video_offset + 1}", "-map", "0:v", "-map", "1:a", "-c:v", "copy",
                "-c:a", "aac", "-shortest"]
    subprocess.run([media.ffmpeg_exe(), "-v", "error", "-y", *args, str(out)], check=True)
    return str(out)


TIMING_CASES = {  # name: (filters, source rate, seconds, video offset)
    "vfr_25_then_8.3": ("setpts='if(lt(N,25),N/25,1+(N-25)*0.12)/TB'", "25", 3, None),
    "vfr_jittered": ("setpts='(N/30+0.012*sin(N*1.7))/TB'", "30", 3, None),
    "cfr_30": ("null", "30", 2, None),
    "cfr_12.5": ("null", "12.5", 2, None),
    "ntsc_video_starts_0.84s_late": ("null", "30000/1001", 3, 0.84),
}


@pytest.mark.parametrize("case", sorted(TIMING_CASES))
def test_frames_are_chosen_by_presentation_time_like_ffmpeg(tmp_path, case):
    filters, rate, seconds, offset = TIMING_CASES[case]
    path = generated_clip(tmp_path, f"{case}.mp4", filters, rate, seconds, offset)
    expected = ffmpeg_fps_choice(path)
    with media.VideoReader(path, target_fps=25) as reader:
        ours = np.concatenate(list(reader.iter_chunks(16)))
        assert len(reader) == len(expected)
        assert np.array_equal(ours, expected)  # every output frame is the very frame ffmpeg picks
        backward = reader.get_frames(range(len(reader) - 1, -1, -1))  # ping-pong reads: same frames
        assert np.array_equal(backward[::-1], expected)


@pytest.mark.parametrize("case", ["vfr_25_then_8.3", "ntsc_video_starts_0.84s_late"])
def test_av1_which_decord_cannot_decode_is_read_with_ffmpeg_alone(tmp_path, case):
    """decord 0.6's own FFmpeg has no AV1 decoder, and AV1 is what phones and video sites increasingly deliver: the
    reader then works from ffmpeg alone, with the very frames ffmpeg's fps filter picks, read forwards, backwards
    (ping-pong) and from a seek far from the start."""
    filters, rate, seconds, offset = TIMING_CASES[case]
    path = generated_clip(tmp_path, f"{case}.mp4", filters, rate, seconds, offset,
                          codec=("libaom-av1", "-cpu-used", "8", "-crf", "30"))
    with pytest.raises(media.MediaError):
        media._open_decord(path)  # the pinned decord cannot: this is the path under test
    expected = ffmpeg_fps_choice(path)
    info = media.probe_video(path)
    assert (info.width, info.height, info.has_audio) == (96, 64, offset is not None)
    with media.VideoReader(path, target_fps=25) as reader:
        assert len(reader) == len(expected) and reader.info == info
        assert np.array_equal(np.concatenate(list(reader.iter_chunks(16))), expected)
        assert np.array_equal(reader.get_frames(range(len(reader) - 1, -1, -1))[::-1], expected)
    with media.VideoReader(path, target_fps=25) as cold:
        last = range(len(cold) - 10, len(cold))
        assert np.array_equal(cold.get_frames(last), expected[last.start :])
        shuffled = [last.stop - 1, 2, last.start]
        assert np.array_equal(cold.get_frames(shuffled), expected[shuffled])


def test_a_browser_recording_without_duration_is_read(tmp_path):
    """A browser's MediaRecorder (webcam recorders, the app's webcam input) writes WebM live: no duration, no
    index, a variable frame rate. decord refused it ("Failed to measure duration/frame-count due to broken
    metadata"); it is read with ffmpeg alone, the frames ffmpeg's fps filter picks."""
    recorded = tmp_path / "recorded.webm"
    subprocess.run([media.ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=96x64:rate=30:duration=3",
                    "-f", "lavfi", "-i", "sine=duration=3", "-vf", "setpts='(N/30+0.01*sin(N))/TB'", "-fps_mode",
                    "vfr", "-c:v", "libvpx", "-deadline", "realtime", "-c:a", "libopus", "-f", "webm", "-live", "1",
                    str(recorded)], check=True)
    assert "Duration: N/A" in media._ffmpeg_stream_report(str(recorded))  # the premise
    expected = ffmpeg_fps_choice(recorded)
    info = media.probe_video(recorded)
    assert (info.width, info.height, info.has_audio) == (96, 64, True)
    with media.VideoReader(recorded, target_fps=25) as reader:
        assert np.array_equal(np.concatenate(list(reader.iter_chunks(16))), expected)
        assert np.array_equal(reader.get_frames(range(len(reader) - 1, -1, -1))[::-1], expected)


FILE_START_CASES = {  # name: (remux options, suffix); each file's timestamps start after 0
    "mpeg_ts": (["-c", "copy"], ".ts"),  # camcorders (AVCHD .mts) and TV recordings: starts at 1.4 s
    "mkv_from_5s": (["-c", "copy", "-output_ts_offset", "5"], ".mkv"),
    "mp4_without_edit_list": (["-c", "copy", "-use_editlist", "0"], ".mp4"),  # B-frames: starts 2 frames late
}


@pytest.mark.parametrize("case", sorted(FILE_START_CASES))
def test_frames_keep_time_whatever_time_the_file_starts_at(tmp_path, case):
    """ffmpeg counts every timestamp from the file's start. The packet times were shifted by the start once more,
    so a file that does not start at 0 lost frames at the end and showed each frame early: of a 2 s MPEG-TS clip
    14 frames of 50 were left, an MP4 without an edit list was 2 frames early throughout, an MKV gave none."""
    filters, rate, seconds, _ = TIMING_CASES["vfr_25_then_8.3"]
    plain = generated_clip(tmp_path, "plain.mp4", filters, rate, seconds)
    options, suffix = FILE_START_CASES[case]
    remuxed = tmp_path / f"{case}{suffix}"
    subprocess.run([media.ffmpeg_exe(), "-v", "error", "-i", plain, *options, str(remuxed)], check=True)
    assert "start: 0.000000" not in media._ffmpeg_stream_report(str(remuxed))  # the premise
    expected = ffmpeg_fps_choice(remuxed)
    with media.VideoReader(remuxed, target_fps=25) as reader:
        assert len(reader) == len(expected)
        assert np.array_equal(np.concatenate(list(reader.iter_chunks(16))), expected)
        assert np.array_equal(reader.get_frames(range(len(reader) - 1, -1, -1))[::-1], expected)


INTERLACED_CASES = {  # name: (frame size, encoder options, suffix)
    "h264_top_field_first": ("96x64", ["-c:v", "libx264", "-flags", "+ilme+ildct", "-pix_fmt", "yuv420p"], ".mp4"),
    "h264_in_mpeg_ts": ("96x64", ["-c:v", "libx264", "-flags", "+ilme+ildct", "-pix_fmt", "yuv420p"], ".ts"),
    "dv": ("720x576", ["-c:v", "dvvideo", "-pix_fmt", "yuv420p"], ".avi"),  # interlaced by its format, untagged
}


def comb(frames: np.ndarray) -> float:
    """How much each line differs from the mean of its neighbours: the combs of two fields woven together."""
    green = frames[..., 1].astype(float)
    return float(np.abs(green[:, 1:-1] - 0.5 * (green[:, :-2] + green[:, 2:])).mean())


@pytest.mark.parametrize("case", sorted(INTERLACED_CASES))
def test_interlaced_video_is_read_deinterlaced(tmp_path, case):
    """TV, camcorder and DV footage stores two fields per frame, 1/50 s apart. Read woven, everything that moves
    shows combs (the mouth, the jaw); every reader now deinterlaces them (bwdif, `media.DEINTERLACE`), the same
    frames as ffmpeg's own bwdif then fps=25, training clips included. decord's FFmpeg could not decode the
    interlaced H.264 transport stream at all (a raw DECORDError), which ffmpeg reads."""
    from latentsync.data.clips import ClipReader

    size, options, suffix = INTERLACED_CASES[case]
    video = tmp_path / f"{case}{suffix}"
    subprocess.run([media.ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", f"color=c=gray:size={size}:rate=50:d=2",
                    "-f", "lavfi", "-i", "color=c=white:size=20x48:rate=50", "-filter_complex",
                    "[0][1]overlay=x='mod(n*3,70)':y=8:shortest=1,tinterlace=mode=interleave_top,setfield=tff",
                    *options, str(video)], check=True)  # a bar moving 3 px a field
    info = media.probe_video(video)
    assert info.interlaced
    woven = ffmpeg_fps_choice(video)
    expected = ffmpeg_fps_choice(video, video_filter=media.DEINTERLACE)
    with media.VideoReader(video, target_fps=25) as reader:
        ours = np.concatenate(list(reader.iter_chunks(16)))
        assert np.array_equal(ours, expected)
        assert np.array_equal(reader.get_frames(range(len(reader) - 1, -1, -1))[::-1], expected)
    assert comb(ours) < 0.3 * comb(woven)
    clip = ClipReader(str(video), 25)
    assert np.array_equal(clip.frames(20, 16), expected[20:36])


def test_progressive_frames_pass_the_deinterlacer_untouched(tmp_path):
    """The pipe always runs `media.DEINTERLACE`: a frame not flagged interlaced comes out bit for bit as decoded."""
    path = generated_clip(tmp_path, "progressive.mp4", "null")
    assert not media.probe_video(path).interlaced
    with media.VideoReader(path) as reader:
        assert np.array_equal(np.concatenate(list(reader.iter_chunks(16))),
                              media._open_decord(path).get_batch(list(range(len(reader)))).asnumpy())


@pytest.mark.parametrize("rate", ["30", "25"])
def test_frames_an_edit_list_hides_are_never_shown(tmp_path, rate):
    """A phone's trimmed video, or a cut made with `ffmpeg -ss 1.3 -c copy`, starts after its keyframe: the frames
    before the cut stay in the file behind an edit list, and players and ffmpeg start at the cut. decord counts
    them (its frame 0 was 1.3 s before the cut), and the pipe's frames were numbered as if it did: the output
    started 1.3 s late and then jumped. Now the reader, the training clips and a data-processing stream copy all
    show the frames ffmpeg's fps filter picks."""
    from data_processing.clips import replace_audio
    from latentsync.data.clips import ClipReader

    whole = tmp_path / "whole.mp4"
    subprocess.run([media.ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                    f"testsrc2=size=96x64:rate={rate}:duration=5", "-f", "lavfi", "-i", "sine=duration=5",
                    "-c:v", "libx264", "-g", "60", "-pix_fmt", "yuv420p", "-c:a", "aac", str(whole)], check=True)
    trimmed = tmp_path / "trimmed.mp4"
    subprocess.run([media.ffmpeg_exe(), "-v", "error", "-ss", "1.3", "-i", str(whole), "-c", "copy", "-t", "3",
                    str(trimmed)], check=True)
    times = media.read_frame_times(trimmed)
    assert times.hidden >= 25  # the premise: frames before the cut
    assert len(media._open_decord(trimmed)) == len(times.times) + times.hidden  # ... which decord counts
    expected = ffmpeg_fps_choice(trimmed)
    assert media.probe_video(trimmed).num_frames == len(times.times)
    with media.VideoReader(trimmed, target_fps=25) as reader:
        assert len(reader) == len(expected)
        assert np.array_equal(np.concatenate(list(reader.iter_chunks(16))), expected)
        assert np.array_equal(reader.get_frames(range(len(reader) - 1, -1, -1))[::-1], expected)
    clip = ClipReader(str(trimmed), 25)
    assert len(clip) == len(expected)
    assert np.array_equal(clip.frames(40, 16), expected[40:56]) and np.array_equal(clip.frames(3, 16), expected[3:19])
    copied = tmp_path / "copied.mp4"
    replace_audio(trimmed, media.read_audio(trimmed), 16000, copied, EncodingStub())
    with media.VideoReader(copied, target_fps=25) as reader:
        assert np.array_equal(reader.get_frames(range(len(reader))), expected)


@dataclass(frozen=True)
class EncodingStub:
    audio_bitrate: str = "64k"


@pytest.mark.parametrize("container", ["mkv", "mp4"])
def test_a_cover_picture_stored_as_a_video_stream_is_not_read_as_the_video(tmp_path, container):
    """Downloaded videos may carry their thumbnail as a video stream of one frame: an "attached pic", or in MKV a
    plain one-frame track, which can come before the video itself. Every reader takes the video (the frames, the
    packet times of its variable frame rate, its colour tags, the stream a data-processing copy keeps), not the
    picture: before, the MKV's frames came from decord alone, its timing was taken as even (one packet listed),
    the small-frame pipe of the speaker pass and shot detection saw one frame, and the output was tagged with the
    picture's JPEG matrix."""
    filters = TIMING_CASES["vfr_25_then_8.3"][0]
    plain = generated_clip(tmp_path, "plain.mp4", filters)
    cover = tmp_path / "cover.jpg"
    subprocess.run([media.ffmpeg_exe(), "-v", "error", "-i", plain, "-frames:v", "1", str(cover)], check=True)
    covered = tmp_path / f"covered.{container}"
    subprocess.run([media.ffmpeg_exe(), "-v", "error", "-i", str(cover), "-i", plain, "-map", "0", "-map", "1:v",
                    "-c:v:0", "mjpeg", "-c:v:1", "copy", "-disposition:v:0", "attached_pic",
                    "-disposition:v:1", "default", str(covered)], check=True)
    assert media._ffmpeg_stream_report(str(covered)).count(": Video: ") == 2
    expected = ffmpeg_fps_choice(plain)
    assert media.probe_video(covered).colour is None and media.describe_streams(covered).video_codec == "h264"
    assert len(media.read_frame_times(covered).times) == media.probe_video(plain).num_frames
    with media.VideoReader(covered, target_fps=25) as reader:
        assert np.array_equal(np.concatenate(list(reader.iter_chunks(16))), expected)
    small = list(media.iter_small_frames(covered, 48, 32))
    assert len(small) == media.probe_video(plain).num_frames
    from data_processing.clips import replace_audio

    copied = tmp_path / "copied.mp4"
    replace_audio(covered, np.zeros(16000, np.float32), 16000, copied, EncodingStub())
    with media.VideoReader(copied, target_fps=25) as reader:
        assert np.array_equal(reader.get_frames(range(len(reader))), expected)


def test_video_that_starts_late_holds_its_first_frame_until_it_starts(tmp_path):
    path = generated_clip(tmp_path, "late.mp4", "null", "30000/1001", 3, video_offset=0.84)
    indices = media.VideoReader(path, target_fps=25).indices
    assert indices[:21].tolist() == [0] * 21  # 0.84 s = 21 frames at 25 fps before the video's first frame
    assert indices[21:24].tolist() == [0, 1, 2]  # then the frames in order, none skipped
    audio = media.read_audio(path)
    assert len(audio) / 16000 == pytest.approx(len(indices) / 25, abs=1.5)


def test_audio_stream_that_starts_late_is_preceded_by_silence(tmp_path):
    out = tmp_path / "late_audio.mp4"
    subprocess.run([media.ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=3",
                    "-itsoffset", "0.5", "-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-map", "0:v", "-map",
                    "1:a", "-c:v", "libx264", "-c:a", "aac", str(out)], check=True)
    audio = media.read_audio(out)
    onset = np.flatnonzero(np.abs(audio) > 0.01)[0] / 16000
    assert onset == pytest.approx(0.5, abs=0.04)  # within one 25 fps frame of where the file plays it


def test_30_to_25_fps_count_and_timing(tmp_path):
    frames = moving_pattern(60)  # 2 s at 30 fps
    out = write_video(tmp_path / "v30.mp4", [frames], fps=30)
    reader = media.VideoReader(out, target_fps=25)
    assert len(reader) == 50 and reader.fps == 25 and not reader.on_grid
    decoded = np.concatenate(list(reader.iter_chunks(16)))
    # Output frame k takes the last source frame whose time rounds to slot <= k (ffmpeg's fps filter).
    for k in (0, 1, 5, 13, 49):
        source = max(i for i in range(60) if np.floor(i * 25 / 30 + 0.5) <= k)
        assert bar_position(decoded[k]) == bar_position(frames[source])


def test_resample_indices_arithmetic():
    assert media.resample_indices(30, 30, 25).tolist() == [0, 1, 2, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 16, 17, 18, 19,
                                                           20, 22, 23, 24, 25, 26, 28, 29]
    assert len(media.resample_indices(31, 30, 25)) == 26  # 1.033 s still shows a frame at t = 1.0 s
    assert media.resample_indices(10, 25, 25).tolist() == list(range(10))
    up = media.resample_indices(10, 12.5, 25)
    assert up.tolist() == [i // 2 for i in range(20)]  # duplication when the source is slower


def test_corpus_vfr_clip_frames_match_ffmpeg():
    path = shared_file("media", "corpus", "vr_face1.mp4")  # a real variable-frame-rate phone clip
    expected = ffmpeg_fps_choice(path)
    with media.VideoReader(path, target_fps=25) as reader:
        assert len(reader) == len(expected) and not reader.on_grid
        assert np.array_equal(np.concatenate(list(reader.iter_chunks(32))), expected)


def test_read_audio_resamples_to_16k_mono(tone_wav):
    audio = media.read_audio(tone_wav, sample_rate=16000)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) / 16000 - 2.0) < 0.01
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * 16000 / len(audio) - 440) < 2
    assert 0.25 < np.abs(audio).max() < 0.35


def test_read_audio_from_video_container(tmp_path, tone_wav):
    out = write_video(tmp_path / "with audio.mp4", [moving_pattern(50)], fps=25, audio_path=tone_wav)
    audio = media.read_audio(out)
    assert abs(len(audio) / 16000 - 2.0) < 0.05


def test_mux_has_both_streams_and_duration(tmp_path, tone_wav):
    out = write_video(tmp_path / "muxed.mp4", [moving_pattern(50)], fps=25, audio_path=tone_wav)
    streams = media.describe_streams(out)
    assert streams.video_codec == "h264" and streams.audio_codec == "aac"
    assert abs(streams.duration - 2.0) < 0.1
    assert media.probe_video(out).has_audio


def test_mux_trims_audio_to_requested_duration(tmp_path, tone_wav):
    out = write_video(tmp_path / "trimmed.mp4", [moving_pattern(25)], fps=25, audio_path=tone_wav,
                            audio_duration=1.0)
    assert abs(len(media.read_audio(out)) / 16000 - 1.0) < 0.05


def test_odd_dimensions_are_padded(tmp_path):
    out = write_video(tmp_path / "odd.mp4", [moving_pattern(5, height=33, width=45)], fps=25)
    info = media.probe_video(out)
    assert (info.width, info.height) == (46, 34)


def test_failed_write_leaves_no_file(tmp_path):
    target = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with media.VideoWriter(target, fps=25) as writer:
            writer.write(moving_pattern(5))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_size_change_and_cleans_up(tmp_path):
    target = tmp_path / "out.mp4"
    writer = media.VideoWriter(target, fps=25)
    writer.write(moving_pattern(3))
    with pytest.raises(ValueError, match="frame size changed"):
        writer.write(moving_pattern(3, height=20))
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_hostile_path_names(tmp_path):
    folder = tmp_path / "a dir with 'quotes' and \"double\" $(touch pwned) ünï"
    folder.mkdir()
    audio = folder / "tone $(touch pwned2).wav"
    media.write_wav(audio, sine(1.0, 16000), 16000)
    video = folder / "-v 'x' $(touch pwned3).mp4"
    write_video(video, [moving_pattern(25)], fps=25, audio_path=audio)
    assert media.probe_video(video).num_frames == 25
    assert len(media.read_audio(video)) > 15000
    stray = [p for p in tmp_path.rglob("pwned*")] + [p for p in (os.getcwd(),) if os.path.exists("pwned")]
    assert stray == []


def test_clear_errors(tmp_path):
    with pytest.raises(media.MediaError, match="not found"):
        media.probe_video(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    with pytest.raises(media.MediaError, match="cannot read video"):
        media.probe_video(junk)
    silent = write_video(tmp_path / "silent.mp4", [moving_pattern(5)], fps=25)
    with pytest.raises(media.MediaError, match="no audio stream"):
        media.read_audio(silent)
    with pytest.raises(media.MediaError, match="no frames were written"):
        media.VideoWriter(tmp_path / "empty.mp4", fps=25).close()


def test_rotation_metadata_is_honoured(tmp_path):
    plain = write_video(tmp_path / "plain.mp4", [moving_pattern(5, height=32, width=64)], fps=25)
    rotated = tmp_path / "rotated.mp4"
    subprocess.run([media.ffmpeg_exe(), "-loglevel", "error", "-display_rotation", "90", "-i", str(plain),
                    "-c", "copy", str(rotated)], check=True)
    info = media.probe_video(rotated)
    assert info.rotation in (90, 270) and (info.width, info.height) == (32, 64)
    frame = next(media.iter_frames(rotated, chunk_size=1))[0]
    assert frame.shape == (64, 32, 3)
    upright = subprocess.run([media.ffmpeg_exe(), "-loglevel", "error", "-i", str(rotated), "-frames:v", "1",
                              "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    reference = np.frombuffer(upright, np.uint8).reshape(64, 32, 3)  # ffmpeg auto-rotates on decode
    assert np.abs(frame.astype(int) - reference).mean() < 1


@pytest.mark.needs_shared
def test_demo_clip_hevc_1080x1920():
    path = shared_file("media", "demo1_video.mp4")
    reader = media.VideoReader(path, target_fps=25)
    assert len(reader) == 250 and reader.fps == 25
    assert (reader.info.width, reader.info.height) == (1080, 1920)
    first = next(reader.iter_chunks(4))
    assert first.shape == (4, 1920, 1080, 3) and first.dtype == np.uint8


def test_mux_pads_a_short_audio_with_silence(tmp_path, tone_wav):
    out = write_video(tmp_path / "padded.mp4", [moving_pattern(75)], fps=25, audio_path=tone_wav,
                            audio_duration=3.0)  # the tone lasts 2 s
    audio = media.read_audio(out)
    assert abs(len(audio) / 16000 - 3.0) < 0.03
    assert np.abs(audio[: 16000]).mean() > 0.05 and np.abs(audio[-8000:]).max() < 1e-3  # tone, then silence


def test_written_colours_are_what_players_show(tmp_path):
    """Frames of no input video (`like` None: generated clips, aligned faces) are converted with BT.709 and the stream
    is tagged so: a player that assumes BT.709 for HD and one that reads the tag (ffmpeg, decord: our readers) both
    show the colours written. ffmpeg's default for RGB input is BT.601, untagged: 25-38 levels off in such a player."""
    patches = [(220, 30, 40), (40, 200, 60), (30, 50, 210), (230, 210, 40), (200, 150, 120), (128, 128, 128)]
    frame = np.zeros((96, 64 * len(patches), 3), np.uint8)
    for k, colour in enumerate(patches):
        frame[:, 64 * k : 64 * (k + 1)] = colour
    out = write_video(tmp_path / "colours.mp4", [np.stack([frame] * 3)], fps=25)
    report = subprocess.run([media.ffmpeg_exe(), "-hide_banner", "-i", str(out)], capture_output=True,
                            text=True).stderr
    assert "yuv420p(tv, bt709" in report
    inner = (slice(16, 80), np.concatenate([np.arange(64 * k + 16, 64 * k + 48) for k in range(len(patches))]))
    for matrix in ("bt709", None):  # a player that assumes BT.709; ffmpeg reading the tag
        scale = ["-vf", f"scale=in_color_matrix={matrix}"] if matrix else []
        raw = subprocess.run([media.ffmpeg_exe(), "-v", "error", "-i", str(out), "-frames:v", "1", *scale, "-f",
                              "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
        shown = np.frombuffer(raw, np.uint8).reshape(frame.shape)
        assert np.abs(shown[inner].astype(int) - frame[inner].astype(int)).max() <= 4, matrix


def test_non_square_pixels_are_kept_in_the_output(tmp_path):
    """DV and anamorphic video store non-square pixels (SAR): the output keeps the input's, so it is shown at the
    input's display aspect, not stretched. A quarter-turn display rotation swaps the terms."""
    stored = tmp_path / "anamorphic.mp4"
    subprocess.run([media.ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25:duration=1",
                    "-vf", "setsar=16/15", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(stored)], check=True)
    rotated = tmp_path / "rotated.mp4"
    subprocess.run([media.ffmpeg_exe(), "-v", "error", "-display_rotation", "90", "-i", str(stored), "-c", "copy",
                    str(rotated)], check=True)
    assert media.probe_video(stored).sample_aspect == (16, 15)
    assert media.probe_video(rotated).sample_aspect == (15, 16)
    assert media.probe_video(write_video(tmp_path / "square.mp4", [moving_pattern(3)], fps=25)).sample_aspect == (1, 1)
    out = tmp_path / "out.mp4"
    with media.VideoWriter(out, 25, like=media.probe_video(stored)) as writer:
        writer.write(media.VideoReader(stored).get_frames(range(5)))
    assert media.probe_video(out).sample_aspect == (16, 15)


# How a player shows a frame: by its colour tags (an untagged one as BT.709, as players do with HD video), HDR
# linearised by its transfer and tone-mapped to SDR.
SHOWN = "zscale=t=linear:npl=203,format=gbrpf32le,zscale=p=bt709,tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv"
AS_HD = "setparams=colorspace=bt709:color_primaries=bt709:color_trc=bt709,"
TAGGED = {"bt709": ("bt709", "colorspace=bt709:color_primaries=bt709:color_trc=bt709"),  # phones' SDR video
          "hlg": ("bt2020", "colorspace=bt2020nc:color_primaries=bt2020:color_trc=arib-std-b67")}  # their HDR video


def shown_by_a_player(path) -> np.ndarray:
    untagged = media.probe_video(path).colour is None
    raw = subprocess.run([media.ffmpeg_exe(), "-v", "error", "-i", str(path), "-frames:v", "1", "-vf",
                          (AS_HD if untagged else "") + SHOWN, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).astype(int)


@pytest.mark.parametrize("tags", [None, "bt709", "hlg"])
def test_a_player_shows_the_output_as_it_shows_the_input(tmp_path, tags):
    """The output's unedited pixels look as the input's do in a player. Our readers decode with the matrix a stream
    is tagged with, so the writer goes back through it and tags the output as the input was (`like`). Before, it
    always wrote BT.601 untagged: right for untagged input, but a phone's BT.709 video was shown with shifted
    colours and its HLG HDR video flat and pale (the "before" errors below)."""
    video = tmp_path / "input.mp4"
    colour = [] if tags is None else [
        "-vf", f"scale=out_color_matrix={TAGGED[tags][0]}:out_range=tv,format=yuv420p,setparams={TAGGED[tags][1]}"]
    subprocess.run([media.ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25:duration=1",
                    *colour, "-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv420p", str(video)], check=True)
    info = media.probe_video(video)
    assert info.colour == {None: None, "bt709": ("bt709",) * 3, "hlg": ("bt2020nc", "bt2020", "arib-std-b67")}[tags]
    errors = {}
    for name, like in (("now", info), ("before", replace(info, colour=None))):
        out = tmp_path / f"{name}.mp4"
        with media.VideoWriter(out, 25, like=like) as writer:
            writer.write(media.VideoReader(video).get_frames(range(5)))
        assert media.probe_video(out).colour == like.colour
        errors[name] = np.abs(shown_by_a_player(out) - shown_by_a_player(video)).mean()
    assert errors["now"] <= 2.5, errors
    assert tags is None or errors["before"] >= 3 * errors["now"], errors
