"""The user's face choice as settings of the face pass's tracker; `speaker` is decided here, before it.

Tracking, smoothing and gap bridging restart at every shot cut (`latentsync.faces.shots`). `largest | index |
position | tracked` go to `FaceTracker` as they are, and the face pass finds the cuts itself on the frames it
decodes. `speaker` first finds
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
    from latentsync.utils.progress import RunProgress


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def tracker_settings(choice: str | None, index: int | None, position, video_path: str, detector, fps: float,
                     num_frames: int, progress: RunProgress, say=_say) -> dict:
    """Keyword settings for `VideoFaceProcessor` / `FaceTracker` (what is absent, configs/faces.yaml decides).

    `cuts` (frame indices that start a shot) is present when the speaker pass found them; otherwise the face pass
    finds them itself on the frames it decodes (`shots.detect`)."""
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
    return {k: v for k, v in settings.items() if v is not None}  # cuts: found by the face pass itself


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
    """The speaker pass found the cuts on its own frames (none is an answer too): the face pass takes them."""
    return {**settings, "cuts": list(cuts)}
