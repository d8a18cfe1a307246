"""The user's face choice as settings of the face pass's tracker; `speaker` is decided here, before it.

Every choice also gets the video's shot cuts (`cuts`, frames of the face pass that start a shot; see
`latentsync.faces.shots`), where tracking, smoothing and gap bridging restart. `largest | index | position |
tracked` go to `FaceTracker` as they are, after a short cut pre-pass over small frames. `speaker` first finds
the speaking face of each shot over the frames the output will show (`latentsync.faces.speaker`, which detects
the cuts on the same decoded frames), prints one line per candidate, the choice and the shot table, and hands
the tracker the chosen faces' boxes in every frame (`guide_boxes`, NaN in shots where nobody speaks: those
pass through untouched). Without an audio track in the video, or when no shot has a face that could be judged
speaking, it says so in one line and falls back to `tracked`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from latentsync.pipelines.progress import RunProgress


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def tracker_settings(choice: str | None, index: int | None, position, video_path: str, detector, fps: float,
                     num_frames: int, progress: RunProgress, say=_say) -> dict:
    """Keyword settings for `VideoFaceProcessor` / `FaceTracker` (what is absent, configs/faces.yaml decides).

    `cuts` (frame indices that start a shot) is present when the video has shot cuts (`shots.detect` on)."""
    from latentsync.faces.detector import load_faces_config

    config = detector.config if detector is not None else load_faces_config()
    configured = choice is None
    choice = config.detector.choice if configured else choice
    if choice == "speaker":
        settings = _speaker_settings(video_path, detector, fps, num_frames, progress, say)
        if settings is not None:
            return settings
        choice, configured = "tracked", False
    settings = {} if configured else {"choice": choice, "choice_index": index, "choice_position": position}
    settings = {k: v for k, v in settings.items() if v is not None}
    cuts = _cut_pre_pass(video_path, config, fps, num_frames, progress, say) if config.shots.detect else []
    return _with_cuts(settings, cuts)


def _cut_pre_pass(video_path, config, fps: float, num_frames: int, progress: RunProgress, say) -> list[int]:
    """The shot cuts alone (a pass over small frames); one line per shot when there is more than one."""
    from latentsync.faces.shots import find_cuts, shot_ranges

    bar = progress.stage("shots", num_frames)
    try:
        cuts = find_cuts(video_path, config.shots, fps, num_frames, progress=bar)
    finally:
        bar.close()
    shots = shot_ranges(cuts, num_frames)
    if len(shots) > 1:
        for k, (start, end) in enumerate(shots, start=1):
            say(f"shot {k}/{len(shots)}: frames {start}-{end - 1} ({end - start}): tracking restarts here")
    return cuts


def _speaker_settings(video_path, detector, fps: float, num_frames: int, progress: RunProgress, say) -> dict | None:
    """Guide boxes and cuts from the speaker pass; None (after a warning) where `tracked` must take over."""
    from latentsync.faces.detector import FaceDetector
    from latentsync.faces.speaker import find_speaker

    own = detector is None
    detector = FaceDetector() if own else detector
    bar = progress.stage("speaker", num_frames)
    try:
        speaker = find_speaker(video_path, detector, fps, num_frames, progress=bar)
    finally:
        bar.close()
        if own:
            detector.close()
    if speaker is None:
        say(f"warning: --face_choice speaker listens to the video's own audio track, but {video_path} has none; "
            "using --face_choice tracked instead")
        return None
    for line in speaker.lines() + speaker.shot_lines():
        say(line)
    if speaker.chosen is None:
        scored = any(c.score == c.score for c in speaker.candidates)  # NaN != NaN
        why = ("no visible face moves with the video's own audio in any shot" if scored
               else "found no face seen long enough to score")
        say(f"warning: --face_choice speaker {why}; using --face_choice tracked")
        return _with_cuts({"choice": "tracked"}, speaker.cuts)
    return _with_cuts({"guide_boxes": speaker.boxes}, speaker.cuts)


def _with_cuts(settings: dict, cuts: list[int]) -> dict:
    """`cuts` joins the settings only when there is one (a single shot leaves them as they were)."""
    return {**settings, "cuts": cuts} if cuts else settings
