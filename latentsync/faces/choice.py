"""The user's face choice as settings of the face pass's tracker; `speaker` is decided here, before it.

`largest | index | position | tracked` go to `FaceTracker` as they are. `speaker` first finds the speaking face
over the frames the output will show (`latentsync.faces.speaker`), prints one line per candidate and the
choice, and hands the tracker that face's box in every frame (`guide_boxes`). Without an audio track in the
video, or without any face that could be scored, it says so in one line and falls back to `tracked`.
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
    """Keyword settings for `VideoFaceProcessor` / `FaceTracker` (empty: configs/faces.yaml decides)."""
    from latentsync.faces.detector import FaceDetector, load_faces_config
    from latentsync.faces.speaker import find_speaker

    if choice is None:
        configured = (detector.config if detector is not None else load_faces_config()).detector.choice
        if configured != "speaker":
            return {}
        choice = configured
    if choice != "speaker":
        settings = {"choice": choice, "choice_index": index, "choice_position": position}
        return {k: v for k, v in settings.items() if v is not None}

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
        return {"choice": "tracked"}
    for line in speaker.lines():
        say(line)
    if speaker.chosen is None:
        say("warning: --face_choice speaker found no face seen long enough to score; using --face_choice tracked")
        return {"choice": "tracked"}
    return {"guide_boxes": speaker.boxes}
