"""Memory stays flat on 1080p footage: the frame reader, many restores, a long face pass.

The bounds are generous on purpose (hundreds of MB); what they catch is growth with the number of frames,
e.g. decord decoding the rest of a video into memory while the caller is busy (6 MB a 1080p frame).
"""

from __future__ import annotations

import subprocess
import threading
import time

import numpy as np
import pytest
import torch

from latentsync.faces.alignment import AlignRestore
from latentsync.faces.face_pass import track_faces
from latentsync.utils.media import VideoReader, ffmpeg_exe
from tools.make_demo_clip import make_demo_clip

MIB = 2**20


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / MIB


class PeakRss:
    """Samples this process's RSS every 20 ms in a thread; `peak` is the highest value seen."""

    def __init__(self):
        self.peak = rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mib())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _test_pattern(path, frames: int, width: int, height: int, gop: int | None = None):
    cmd = [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
           f"testsrc2=size={width}x{height}:rate=25", "-frames:v", str(frames), "-c:v", "libx264",
           "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if gop:
        cmd += ["-g", str(gop)]
    subprocess.run([*cmd, str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def clip_1080p(tmp_path_factory):
    return _test_pattern(tmp_path_factory.mktemp("hd") / "pattern_1080x1920.mp4", 150, 1080, 1920)


@pytest.mark.parametrize("target_fps", [None, 30, 17])
def test_reader_frames_equal_decord_forward_backward(tmp_path, target_fps):
    import decord

    video = _test_pattern(tmp_path / "gop7.mp4", 90, 96, 64, gop=7)
    reference = decord.VideoReader(str(video)).get_batch(list(range(90))).asnumpy()
    with VideoReader(video, target_fps=target_fps) as reader:
        n = len(reader)
        order = [*range(n), *range(n - 1, -1, -1), *range(n), 5, 3, 40]  # forward, ping-pong, loop, random
        got = np.concatenate([reader.get_frames(order[s:s + 16]) for s in range(0, len(order), 16)])
        np.testing.assert_array_equal(got, reference[reader.indices[order]])


def test_reader_does_not_decode_ahead(clip_1080p):
    with VideoReader(clip_1080p) as reader:
        reader.get_frames(range(16))
        before = rss_mib()
        with PeakRss() as peak:
            time.sleep(1.5)  # a slow stage: decord decoded the rest of the video (~800 MB) meanwhile
            chunk = reader.get_frames(range(16, 32))
        assert chunk.shape == (16, 1920, 1080, 3)
    assert peak.peak - before < 250, f"RSS grew by {peak.peak - before:.0f} MiB while the reader was idle"


def test_many_restores_on_a_1080p_frame_keep_rss_flat(clip_1080p):
    restorer = AlignRestore(resolution=256)
    # a face about 420 px wide in the middle of the frame
    points = np.array([[420.0, 800.0], [660.0, 800.0], [540.0, 920.0]])
    matrix, _ = restorer.transformation_from_points(points, restorer.face_template, smooth=False)
    w, h = restorer.face_size
    face = torch.rand(3, h, w, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with VideoReader(clip_1080p) as reader:
        frame = reader.get_frames([0])[0]
        before = rss_mib()  # the reader stays open: a decoder running ahead in the background would show here
        with PeakRss() as peak:
            for _ in range(200):
                target = frame.copy()
                restorer._restore_one(target, face, torch.from_numpy(matrix))
    assert not np.array_equal(target, frame)  # something was pasted
    assert peak.peak - before < 200, f"200 restores on a 1080p frame grew RSS by {peak.peak - before:.0f} MiB"


@pytest.mark.slow
def test_face_pass_over_a_long_1080p_clip_does_not_grow(tmp_path):
    video, _ = make_demo_clip(tmp_path, seconds=8, width=1080, height=1920)
    with VideoReader(video) as reader:
        track_faces(reader, 48, 256, progress=False)  # warm-up: models loaded, pools filled
        settled = rss_mib()
        with PeakRss() as peak:
            track = track_faces(reader, len(reader), 256, progress=False)
    assert track.has_face.mean() > 0.9
    assert peak.peak - settled < 300, f"a {len(track.has_face)}-frame face pass grew RSS by {peak.peak - settled:.0f} MiB"
