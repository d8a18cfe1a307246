"""The user's face choice resolved once into a `FaceChoice` for the face pass; `speaker` is decided here, before it.

Tracking, smoothing and gap bridging restart at every shot cut (`latentsync.faces.shots`). `largest | index |
position | tracked` go to `FaceTracker` as they are, and the face pass finds the cuts itself on the frames it
decodes. `speaker` first finds
the speaking face of each shot over the frames the output will show (`latentsync.faces.speaker`, which detects
the cuts on the same decoded frames), prints one line per candidate, the choice and the shot table, and hands
the tracker the chosen faces' boxes in every frame (`guide_boxes`, NaN in shots where nobody speaks: those
pass through untouched). When no shot has a speaker although the video's own audio is sound, the voice is
nobody's on screen (a voice-over): `NoSpeakerError` says so, since editing anyone would edit a bystander (it carries
the choice that edits nobody, for the app's preview to show every frame passing through). Without
an audio track, with a silent one, or with no face seen long enough to judge, it says so in one line and falls back
to `tracked`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from latentsync.errors import NoSpeakerError

if TYPE_CHECKING:
    from latentsync.faces.detector import FaceDetector
    from latentsync.faces.settings import FacesConfig
    from latentsync.utils.progress import RunProgress


@dataclass(frozen=True)
class FaceChoice:
    """Which face the face pass edits, settled before it starts.

    `choice`: largest | index | position | tracked (how `FaceTracker` picks at keyframes), with `index` (n-th
    face from the left) and `position` ((x, y) pixels) where it needs them. `guide_boxes`: the speaker pass's
    chosen box per frame ((N, 4), NaN where nobody speaks); the tracker then follows it (`tracked`).
    `cuts`: the frames that start a shot when a pre-pass found them (None: the face pass finds them itself).
    `report`: what deciding it said (the speaker candidates and shot table, a fallback's warning), kept with a
    prepared face pass so that a run replaying it from the reuse cache names its face too (`say_again`)."""

    choice: str
    index: int
    position: tuple[float, ...] | None
    guide_boxes: np.ndarray | None = None
    cuts: tuple[int, ...] | None = None
    report: tuple[str, ...] = ()

    @classmethod
    def configured(cls, config: FacesConfig) -> FaceChoice:
        """The faces config's own choice (`detector.choice`, `choice_index`, `choice_position`)."""
        det = config.detector
        return cls(det.choice, det.choice_index, det.choice_position)

    def editing_nobody(self, num_frames: int) -> FaceChoice:
        """The same choice guided by no box in any of `num_frames` frames: every frame passes through (`speaker`
        on a voice-over, which the app's preview shows where a run stops)."""
        return replace(self, choice="tracked", guide_boxes=np.full((num_frames, 4), np.nan))

    @property
    def edits_nobody(self) -> bool:
        """True when a guide is given and has no box anywhere: no face is to be edited, by choice."""
        return self.guide_boxes is not None and not np.isfinite(self.guide_boxes).any()

    def with_cuts(self, cuts) -> FaceChoice:
        """The same choice with the shot cuts found beforehand (an empty list: one shot)."""
        return replace(self, cuts=tuple(int(c) for c in cuts))


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def say_again(report, say=_say) -> None:
    """The lines a face choice said when its face pass ran (`FaceChoice.report`), for a run that replays that face
    pass from the reuse cache and decides nothing itself."""
    if report:
        say("face choice of the face pass replayed from the reuse cache (decided when this video was first run):")
    for line in report:
        say(line)


def resolve_face_choice(choice: str | None, index: int | None, position, video_path: str,
                        detector: FaceDetector | None, fps: float, num_frames: int, progress: RunProgress,
                        say=_say) -> FaceChoice:
    """The face pass's `FaceChoice` for the user's `--face_choice` / `--face_index` / `--face_position` (None:
    the faces config decides all three: the detector's, or configs/faces.yaml without a detector).

    Its `cuts` are set when the speaker pass found them; otherwise the face pass finds them itself on the frames
    it decodes (`shots.detect`)."""
    from latentsync.faces.settings import load_faces_config

    configured = FaceChoice.configured(detector.config if detector is not None else load_faces_config())
    if choice is None:
        if configured.choice != "speaker":
            return configured
        choice = "speaker"
    if choice == "speaker":
        return _speaker_choice(configured, video_path, detector, fps, num_frames, progress, say)
    return FaceChoice(choice, configured.index if index is None else index,
                      configured.position if position is None else position)


def _speaker_choice(configured: FaceChoice, video_path, detector: FaceDetector | None, fps: float, num_frames: int,
                    progress: RunProgress, say) -> FaceChoice:
    """Guide boxes and cuts from the speaker pass, or (after a warning) `tracked` where it cannot decide."""
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
    tracked = replace(configured, choice="tracked")
    if speaker is None:
        line = (f"warning: --face_choice speaker listens to the video's own audio track, but {video_path} has none; "
                "using --face_choice tracked instead")
        say(line)
        return replace(tracked, report=(line,))
    report = speaker.lines() + speaker.shot_lines()
    for line in report:
        say(line)
    if speaker.chosen is None:
        scored = any(c.score == c.score for c in speaker.candidates)  # NaN != NaN
        if not speaker.audible:
            why = "hears only silence in the video's own audio, so it cannot tell who speaks"
        elif not scored:
            why = "found no face seen long enough to score"
        else:
            raise NoSpeakerError(
                f"--face_choice speaker: no visible face in {video_path} moves with its own audio in any of its "
                f"{len(speaker.shots)} shot(s) (the shot table above): the voice is nobody's on screen, so nothing "
                "was lip-synced. To lip-sync a face anyway: --face_choice tracked (one person) or largest (the "
                "official choice)", passthrough=tracked.editing_nobody(num_frames).with_cuts(speaker.cuts))
        report.append(f"warning: --face_choice speaker {why}; using --face_choice tracked")
        say(report[-1])
        return replace(tracked.with_cuts(speaker.cuts), report=tuple(report))
    return replace(tracked, guide_boxes=speaker.boxes, report=tuple(report)).with_cuts(speaker.cuts)
