"""Occluders in front of the lower face: where a hand or an object covers the edited mouth region, keep the original.

Interface (what the pipeline calls, once per frame of the edited face, frames in order):

    from latentsync.faces.occlusion import OccluderMasker, keep_occluders

    masker = OccluderMasker("auto", faces_config.occlusion)   # mode: auto | hands | off (config: a FacesConfig)
    mask = masker(frame_rgb_uint8, face_box, landmarks)   # (H, W) float32 in [0, 1], or None (nothing found)
    for back, patch in masker.revisions():                 # an object found now also grows the masks of up to
        ...                                                # `look_back` earlier frames: frame (this - back)
    out = keep_occluders(original, restored, mask)         # out = original * m + restored * (1 - m), once final
    masker.reset()                                         # at every shot cut (and when the face track changes)
    masker.close()

- `face_box` is the face's landmark box (x1, y1, x2, y2) in frame pixels (`AlignedFrame.face_box`),
  `landmarks` its (N, 2) landmarks in frame pixels (`AlignedFrame.landmarks`). Frames without a face: do not
  call it (or pass `face_box=None`, which returns None and lets the fade-out state decay). A bridged frame (a face
  box, `landmarks=None`: the face pass lost the landmarks for a few frames and edits them anyway) is searched
  with the last frame's landmarks.
- `masker.patch(...)` returns the same result as an `OcclusionPatch` (a box and the mask inside it), which is
  all that is non-zero; `keep_occluders` takes either and then only touches the box (cheap at 1080p).
- 1 means "something covers the face here: keep the original pixels". The mask is feathered at its edge
  (grown by `feather` first, so the occluder itself stays at 1; the colour cue's edge, found on the coarse
  analysis grid, is first snapped to the frame's own edges by a guided filter, `refine`) and steady in time:
  each frame's mask is `max(new, decay x previous)`, so a leaving occluder fades out, and a frame that finds
  under `hold` of the last frame's occluder (a detection dropout) also keeps the last frame's detection whole.

The package, one file per part:

- `masker.py`: `OccluderMasker`, both cues frame by frame with the temporal state (feather, decay, hold, the
  shot's mouth colours, following an object back over earlier frames and forwards off the lower face);
- `hands.py`: the hand cue (`HandFinder`: MediaPipe Hands around the face; `not_the_face`; `draw_hand`);
- `colour.py`: the colour cue on one frame's analysed region (`colour_candidates`, `colour_occluders`,
  `face_regions`);
- `geometry.py`: the mask's patch and the blend (`OcclusionPatch`, `keep_occluders`, `edited_region`), and the
  regions around a face that both cues analyse.

Measurements, what is and is not detected, and what was tried: docs/faces.md "Occlusion".
"""

from .geometry import OcclusionPatch, edited_region, keep_occluders
from .masker import OccluderMasker

__all__ = ["OccluderMasker", "OcclusionPatch", "edited_region", "keep_occluders"]
