"""The colour cue (`auto` only), on one frame's region around the lower face at `analysis_width` pixels wide:
objects that are neither skin nor lips.

The face's own colour is sampled in the same frame on the cheeks and nose (the landmark hull, inset, above the
nose tip: a mouth occluder rarely covers them); pixels whose r, g chromaticity is far from it, that are far less
saturated (grey, black, white, metal), or too dark for a colour, are candidates (`colour_candidates`). The nose's
underside (nostrils) never is. The lips and the open mouth: until the shot's mouth colours are learnt (by the
masker, `mouth_cells` here) the lip ring has a per-frame colour model and the open mouth is never a candidate;
after, a pixel there is a candidate when it is none of those colours. Candidates count only on the face, a thin
margin and below the chin, in pieces big enough on the lower face; from there an object is followed only over its
own colours (those seen where it lies on the lower face), and beyond the face over pixels unlike the background
sampled beside the cheeks; parts of other colours join it (a band inside its outline, a tip past an elongated
object's end, even one as pale as the face's sheen or over the nose's underside); a closing bridges the pieces;
below the chin it is kept only straight under where it lies higher up (a handle, not the clothes of its colour
beside it: `chin_spread`) (`colour_occluders`).

It catches black, grey, white, metal and coloured objects (microphones, pens, cups); it cannot see skin-coloured
objects (a wooden or beige pen, a hand without the hand model), cannot follow an object beyond the face over a
background of the same colour, and does not know a dark full beard from a dark object. It needs to know where the
inner lips are: it runs for the 468/478-point mediapipe mesh and 68-point layouts (`face_regions` is None for
others, and `auto` is then hands only).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..settings import OcclusionSettings
from .geometry import disk

# Inner-lip ring per landmark count (the open mouth: teeth and cavity are not occluders).
INNER_LIPS = {
    468: (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95),
    478: (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95),
    68: (60, 61, 62, 63, 64, 65, 66, 67),
}
OUTER_LIPS = {
    468: (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146),
    478: (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146),
    68: tuple(range(48, 60)),
}
# Nose tip per landmark count: colour occluders are only seeded below it (eyes and brows are dark, not occluders).
NOSE_TIP = {468: 1, 478: 1, 68: 30}
# The underside of the nose (tip, alae, nostrils): dark nostrils and their shade are not occluders.
NOSE_BOTTOM = {
    468: (1, 2, 97, 326, 98, 327, 64, 294, 48, 278, 219, 439, 240, 460, 75, 305, 79, 309, 20, 250, 94, 19),
    478: (1, 2, 97, 326, 98, 327, 64, 294, 48, 278, 219, 439, 240, 460, 75, 305, 79, 309, 20, 250, 94, 19),
    68: (30, 31, 32, 33, 34, 35),
}
# An end part (`_with_end_parts`) lies mostly (this share of its pixels) past the object's end, within this many
# half-widths of its axis.
END_SHARE, END_WIDTH = 0.6, 1.5


def _robust_z(values_map: list[np.ndarray], sample: np.ndarray, floor: float) -> np.ndarray:
    """Per pixel, the largest |x - median| / robust SD over the channels, median and SD taken on `sample`."""
    z = np.zeros(sample.shape, np.float32)
    for channel in values_map:
        values = channel[sample]
        centre = float(np.median(values))
        spread = max(1.4826 * float(np.median(np.abs(values - centre))), floor)
        z = np.maximum(z, np.abs(channel - centre) / spread)
    return z


def _lips_seen(saturation: np.ndarray, lips: np.ndarray, skin_saturation: float, neutral_ratio: float) -> bool:
    """Whether the lip ring shows lips, so that its colours may be taken as the lips' own (the per-frame lip model
    used until the shot's mouth colours are learnt): its median saturation is at least `neutral_ratio` x the skin's
    (`skin_saturation`, the skin sample's median).
    Lips are about as saturated as the skin or more (0.77 x its median at the least, over 100 frames of every corpus
    clip); a microphone or a cup over most of the ring is grey or white (0.05-0.32 x). Were its colours taken as the
    lips', the object's part over the lips would not be found in the shot's first frames, and would be learnt as the
    mouth's colours and missed on (docs/faces.md "Occlusion")."""
    return float(np.median(saturation[lips])) >= neutral_ratio * skin_saturation


def _deeper_than_lips(chroma: list[np.ndarray], lips: np.ndarray, skin: np.ndarray, floor: float, z: float
                      ) -> np.ndarray:
    """Pixels whose chromaticity lies beyond the lips' median on the line from the skin's, within `z` robust SDs
    of that line: the deep red centre of a lipsticked lip, far from the lip ring's median (which the ring's
    pale edge pulls towards the skin) but in the lips' own direction. An object over the lips (blue, grey,
    black) lies elsewhere."""
    skin_c = np.array([np.median(c[skin]) for c in chroma])
    lip_c = np.array([np.median(c[lips]) for c in chroma])
    axis = lip_c - skin_c
    length = float(np.hypot(*axis))
    if length < floor:
        return np.zeros(lips.shape, bool)
    dx, dy = chroma[0] - lip_c[0], chroma[1] - lip_c[1]
    along = (dx * axis[0] + dy * axis[1]) / length
    across = np.abs(dx * axis[1] - dy * axis[0]) / length
    spread = max(1.4826 * float(np.median(across[lips])), floor)
    return (along > 0) & (across <= z * spread)


@dataclass(frozen=True)
class ColourCandidates:
    """The colour cue's verdict per pixel of one analysed region (`colour_candidates`)."""

    image: np.ndarray  # the region, blurred (float32 RGB)
    anywhere: np.ndarray  # bool: neither skin nor lips (nor the shot's mouth colours), or too dark for a colour
    never: np.ndarray  # bool: never a candidate (the nose's underside; the open mouth or its learnt colours)
    at_ends: np.ndarray  # bool: what only an elongated object's end may take (`_with_end_parts`): pale pixels on the
    # face that the sheen rule excused, and the nose's underside where it is not skin-coloured (a pen's metal tip)


def colour_candidates(roi: np.ndarray, regions: dict, settings: OcclusionSettings,
                      mouth_cells: np.ndarray | None = None) -> ColourCandidates | None:
    """The pixels of the analysed region that may belong to an occluder (see `colour_occluders` for the arguments),
    None where too little of the face's skin is seen to sample its colour."""
    s = settings
    image = cv2.GaussianBlur(roi, (3, 3), 0).astype(np.float32)
    total = image[..., 0] + image[..., 1] + image[..., 2] + 1e-3  # exact (integers), much cheaper than .sum(axis=2)
    chroma = [image[..., 0] / total, image[..., 1] / total]
    luma = image @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    bright_enough = luma >= s.min_luma
    skin = (regions["skin"] > 0) & bright_enough
    if skin.sum() < 16:
        return None
    not_skin = _robust_z(chroma, skin, s.chroma_floor) > s.chroma_z
    # Grey, black, white and metal: far less saturated than this face's skin (the chromaticity z misses them
    # when the skin's own spread is wide).
    saturation = np.hypot(chroma[0] - 1 / 3, chroma[1] - 1 / 3)
    face_luma = float(np.median(luma[skin]))
    skin_saturation = float(np.median(saturation[skin]))
    neutral, like_sheen = _neutral_objects(saturation, luma, skin, skin_saturation, face_luma, s)
    not_skin |= neutral
    mouth_area = (regions["lips"] > 0) | (regions["mouth"] > 0)
    lips = (regions["lips"] > 0) & bright_enough
    if mouth_cells is None and lips.sum() >= 16 and _lips_seen(saturation, lips, skin_saturation, s.neutral_ratio):
        not_lips = _robust_z(chroma, lips, s.chroma_floor) > s.chroma_z
        not_lips &= ~_deeper_than_lips(chroma, lips, skin, s.chroma_floor, s.chroma_z)
        not_skin &= ~((regions["lips"] > 0) & ~not_lips)
    # Shadowed skin keeps its chromaticity, so darkness alone only counts where chromaticity is unreliable.
    dark = min(s.min_luma, s.dark_ratio * face_luma)
    too_dark = luma < dark
    if s.shadow_share > 0 and too_dark.any():
        # A dark piece that covers part of the cheeks and nose sampled above the nose tip is the face's own shadow
        # (a side light): an occluder in front of the mouth rarely reaches up there.
        sample = regions["skin"] > 0
        too_dark &= _seeded(too_dark.astype(np.uint8), sample, s.shadow_share, int(sample.sum())) == 0
    never = regions["nose"] > 0
    if mouth_cells is None:
        never |= regions["mouth"] > 0
    else:
        never |= mouth_area & mouth_cells.ravel()[colour_bins(roi, s.colour_bins)]
    # On a dim face (median luminance under min_luma / dark_ratio) the pixels from `dark` to `min_luma` were neither:
    # too dark to trust their chromaticity, not dark enough to count as dark. A grey or black object there (a
    # microphone in a dim room, or in front of dark skin) is still far less saturated than the skin: noise only
    # adds saturation, and shaded skin keeps its own.
    dim_grey = neutral & ~bright_enough & (luma >= dark)
    objectish = (not_skin & bright_enough) | dim_grey | too_dark
    # What only an elongated object's end may take: on the face, pale pixels excused as its sheen, and what is not
    # skin on the nose's underside, unless too dark (nostrils, shade).
    excused = like_sheen | (not_skin & (regions["nose"] > 0))
    at_ends = excused & bright_enough & ~too_dark & (regions["zone"] > 0)
    return ColourCandidates(image, objectish & ~never, never, at_ends)


def colour_occluders(roi: np.ndarray, regions: dict, face_width: float, settings: OcclusionSettings,
                     mouth_cells: np.ndarray | None = None, candidates: ColourCandidates | None = None) -> np.ndarray:
    """uint8 {0, 255} mask of pixels in the analysed region that are neither skin nor lips, seeded in the face.

    `roi`: (h, w, 3) RGB uint8 at analysis scale. `regions` (uint8 masks, see `face_regions`): `skin` where the
    face's colour is sampled (cheeks and nose, above the nose tip: a mouth occluder rarely covers them),
    `lips` (the lip ring, which has its own colour model and is only accepted there), `mouth` (the open mouth,
    never a candidate unless `mouth_cells` is given), `nose` (the nose's underside: nostrils, never a
    candidate), `seed` (the lower face: an occluder must cover part of it), `zone` (the face, a thin margin
    and the area below the chin: an occluder is followed there), `below_chin` (bool: that area's part off the
    face, where it is followed only straight down, `chin_spread`) and `background` (beside the cheeks: beyond
    the zone an occluder is followed over pixels unlike it). `face_width`
    in analysis pixels. `mouth_cells` (bool, colour_bins^3, already grown by `grown_cells`): the colours the
    lips and the open mouth showed in earlier frames of the shot where nothing covered them; when given, a lip
    or mouth pixel is a
    candidate when it is neither skin nor one of those colours (replaces the lip model and the mouth exclusion,
    so an object over the open mouth is seen). `candidates`: `colour_candidates` of the same arguments, when
    the caller has them already.
    """
    s = settings
    if candidates is None:
        candidates = colour_candidates(roi, regions, s, mouth_cells)
    if candidates is None:
        return np.zeros(roi.shape[:2], np.uint8)
    image, anywhere, never = candidates.image, candidates.anywhere.copy(), candidates.never

    def seeded(anywhere):  # candidates where an occluder is followed, and the pieces of them on the lower face
        candidate = (anywhere & (regions["zone"] > 0)).astype(np.uint8) * 255
        return candidate, _seeded(candidate, regions["seed"] > 0, s.min_area, regions.get("lower_face"))

    candidate, found = seeded(anywhere)
    if not found.any():
        return found
    blended = np.zeros(anywhere.shape, bool)
    if s.blend_contrast > 0:  # something is there: join its parts across the edges between its colours
        blended = _blends(image, anywhere, s.blend_contrast, s.blend_tolerance) & ~never
        anywhere |= blended
        candidate, found = seeded(anywhere)
    core = (found > 0) & (regions["seed"] > 0)
    if s.object_bins > 0:
        # The object's own colours, where it lies on the lower face: from there it is followed only over
        # pixels like it, not into dark hair, jaw shade or nostrils that happen to touch it. The blended edges
        # between its colours are its own too.
        like_object = _like(roi, core, s.object_bins) | blended
        anywhere &= like_object
        found = _touching((candidate > 0) & like_object, core)
        if s.part_share > 0:
            found = _with_parts(found > 0, candidate > 0, like_object, s.part_share,
                                disk(s.part_outline * face_width / 2))
        if s.end_elongation > 0:
            excused = candidates.at_ends & ~blended & (found == 0)
            found = _with_end_parts(found > 0, (candidate > 0) & ~like_object & (found == 0), s.end_elongation,
                                    excused, s.end_reach)
    if s.beyond_face:
        # Beyond the face the edited region reaches into the background: follow a found object there, over
        # pixels that are neither skin nor like the background sampled beside the cheeks.
        beyond = anywhere & (regions["zone"] == 0) & ~_like(roi, regions["background"], s.colour_bins)
        found = _touching((found > 0) | beyond, found > 0)
    if s.close > 0 and found.any():
        found = cv2.morphologyEx(found, cv2.MORPH_CLOSE, disk(s.close * face_width / 2))
    if s.chin_spread >= 0:
        # Below the chin the object's colour is often the clothes' (a black microphone, a black turtleneck).
        found = _straight_down(found, regions["below_chin"], s.chin_spread)
    return found


def _straight_down(found: np.ndarray, below: np.ndarray, spread: float) -> np.ndarray:
    """uint8 {0, 255}: `found` with its pixels in `below` (bool: below the chin) kept only under the columns it
    covers higher up, the kept band widening by `spread` pixels a row on each side: a microphone's handle goes
    on down, the clothes of its colour that touch it are not taken (a black microphone over a black turtleneck took
    half of the edited region below her chin: docs/faces.md "Occlusion")."""
    rows = np.nonzero(below.any(axis=1))[0]
    if not rows.size or not found[rows].any():
        return found
    out = found.copy()
    columns = below.any(axis=0)
    under = (out[: rows[0]] > 0).any(axis=0) & columns  # the zone's columns the object covers above it
    owed = 0.0
    for y in range(rows[0], rows[-1] + 1):
        owed += spread
        grow = int(owed)
        owed -= grow
        if grow:
            under = cv2.dilate(under.astype(np.uint8)[None], np.ones((1, 2 * grow + 1), np.uint8))[0] > 0
        out[y, below[y] & ~under] = 0
        under = (under | (out[y] > 0)) & columns
    return out


def coming_in(roi: np.ndarray, regions: dict, candidates: ColourCandidates, settings: OcclusionSettings
              ) -> np.ndarray:
    """uint8 {0, 255}: the pixels of the lips and the open mouth that belong to something coming in from outside
    them: a candidate piece on the face, as large as an occluder (`min_area` of the lower face), that touches
    them, and the pixels there like it and joined to it. The mouth's colours are learnt where nothing covers it
    (`OccluderMasker._learn_mouth`); an object that reaches the lips before it is found (from beside the jaw,
    where alone it is not taken for an occluder) would teach the mouth its colours and stay unseen over the mouth
    for the rest of the shot. Teeth and the mouth's inside appear within the lips, joined to nothing outside. Used
    once the shot's first `mouth_frames` are learnt: a shot whose lips something touches from its first frame
    must still learn its mouth (applied from the first frame, it cost up to 9 points of kept on other clips, or
    kept the teeth out of the model where a white cup touched the lips: docs/faces.md "Occlusion")."""
    s = settings
    mouth_area = (regions["lips"] > 0) | (regions["mouth"] > 0)
    outside = candidates.anywhere & (regions["zone"] > 0) & ~mouth_area
    rim = outside & (cv2.dilate(mouth_area.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    if not rim.any():
        return np.zeros(mouth_area.shape, np.uint8)
    pieces = _touching(outside, rim)
    pieces = _seeded(pieces, np.ones(mouth_area.shape, bool), s.min_area, regions.get("lower_face")) > 0
    like = _like(roi, pieces, s.colour_bins)
    return _touching((mouth_area & like) | pieces, pieces) & (mouth_area.astype(np.uint8) * 255)


def _with_parts(found: np.ndarray, candidate: np.ndarray, like_object: np.ndarray, share: float,
                disk: np.ndarray) -> np.ndarray:
    """uint8 {0, 255}: `found` (bool) with the parts of other colours it holds. An object is followed over its own
    colours as seen on the lower face; a part of another colour (the red band of a white cup, below the chin)
    would stop it there, and whatever lies beyond that part would be lost. A candidate piece of other colours
    within the object's outline (the object and pixels like it, closed with `disk`) that touches the object and
    whose one-pixel border is mostly (`share`) the object or pixels like it is such a part: it joins, and the
    object is followed on beyond it over its own colours. Jaw shade, hair or a collar beside the object lie
    outside that outline or have a border of skin, background or clothes, and stay out."""
    objectish = found | (candidate & like_object)
    closed = cv2.morphologyEx(objectish.astype(np.uint8), cv2.MORPH_CLOSE, disk) > 0
    other = candidate & ~like_object & closed
    count, labels = cv2.connectedComponents(other.astype(np.uint8), connectivity=8)
    if count <= 1:
        return found.astype(np.uint8) * 255
    # Each border pixel goes to the piece beside it (the largest label when two pieces are that close).
    beside = cv2.dilate(labels.astype(np.float32), np.ones((3, 3), np.uint8)).astype(np.intp)
    border = ~other & (beside > 0)
    size = np.bincount(beside[border], minlength=count)
    on_object = np.bincount(beside[border & objectish], minlength=count)
    touching = np.bincount(beside[border & found], minlength=count) > 0
    parts = touching & (on_object >= share * np.maximum(size, 1))
    parts[0] = False
    return _touching(found | parts[labels] | (candidate & like_object), found)


def _with_end_parts(found: np.ndarray, other: np.ndarray, elongation: float, excused: np.ndarray | None = None,
                    reach: float = 0.0) -> np.ndarray:
    """uint8 {0, 255}: `found` (bool) with the parts of other colours at the ends of an elongated object: a pen's
    metal tip, a cap. Such a part shares only the object's short end, so `_with_parts`'s border rule cannot see
    it. When the object is at least `elongation` times as long as it is wide (its pixels' principal axes), a
    candidate piece of other colours (`other`) that touches it and lies mostly (`END_SHARE`) past one of its ends,
    within its width (`END_WIDTH`), joins; jaw shade, lips or hair beside the object lie across its axis and stay out.
    `excused` (bool): pixels that are no candidates only because a face may look like them (a grey tip as pale as
    the face's sheen, or over the nose's underside: most of the pen's lost tip in the bench); those within that
    width and up to `reach` x the object's length past an end count as `other` too (only there: a shiny chin or a
    nose is no part of anything elsewhere)."""
    ys, xs = np.nonzero(found)
    if len(xs) < 8:
        return found.astype(np.uint8) * 255
    points = np.stack([xs, ys], axis=1).astype(np.float64)
    centre = points.mean(axis=0)
    values, vectors = np.linalg.eigh(np.cov((points - centre).T))
    axis, across_axis = vectors[:, 1], vectors[:, 0]
    along = (points - centre) @ axis
    half_width = np.sqrt(3.0 * max(values[0], 1e-6))  # a bar of width w has sd w / sqrt(12) across
    if along.max() - along.min() < elongation * 2 * half_width:
        return found.astype(np.uint8) * 255
    if excused is not None and reach > 0:
        ey, ex = np.nonzero(excused)
        rel = np.stack([ex, ey], axis=1) - centre
        t, d = rel @ axis, np.abs(rel @ across_axis)
        beyond = np.maximum(t - along.max(), along.min() - t)  # > 0 past either end
        band = (beyond > 0) & (beyond <= reach * (along.max() - along.min())) & (d <= END_WIDTH * half_width)
        other = other.copy()
        other[ey[band], ex[band]] = True
    count, labels = cv2.connectedComponents(other.astype(np.uint8), connectivity=8)
    if count <= 1:
        return found.astype(np.uint8) * 255
    touching = np.zeros(count, bool)
    touching[np.unique(labels[cv2.dilate(found.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0])] = True
    ly, lx = np.nonzero(labels)
    rel = np.stack([lx, ly], axis=1) - centre
    t, d = rel @ axis, np.abs(rel @ across_axis)
    at_end = ((t > along.max()) | (t < along.min())) & (d <= END_WIDTH * half_width)
    piece = labels[ly, lx]
    share = np.bincount(piece, weights=at_end, minlength=count) / np.maximum(np.bincount(piece, minlength=count), 1)
    ends = touching & (share >= END_SHARE)
    ends[0] = False
    return (found | ends[labels]).astype(np.uint8) * 255


def _blends(image: np.ndarray, mask: np.ndarray, contrast: float, tolerance: float) -> np.ndarray:
    """Pixels outside `mask` that lie between two pixels of it (either side, in one of four directions) and whose
    colour is a mix of theirs: where two colours of one object meet (a red band on a white cup), the downscaled,
    blurred edge between them can pass for skin and would cut the object in two. A strip of real skin between two
    objects (a jaw between dark hair and a dark microphone) is no mix of their colours and stays a gap.
    `contrast`: the two sides differ by at least this (RGB distance); `tolerance`: the pixel lies within this
    share of that difference of the line between them."""
    out = np.zeros(mask.shape, bool)
    h, w = mask.shape
    centre = (slice(1, h - 1), slice(1, w - 1))
    pixel, gap = image[centre], ~mask[centre]
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        before = (slice(1 - dy, h - 1 - dy), slice(1 - dx, w - 1 - dx))
        after = (slice(1 + dy, h - 1 + dy), slice(1 + dx, w - 1 + dx))
        both = gap & mask[before] & mask[after]
        if not both.any():
            continue
        a, b, p = image[before][both], image[after][both], pixel[both]
        span = b - a
        length2 = np.maximum((span * span).sum(axis=1), 1e-6)
        t = ((p - a) * span).sum(axis=1) / length2
        off = p - (a + np.clip(t, 0, 1)[:, None] * span)
        mixed = ((length2 >= contrast**2) & (t > 0.05) & (t < 0.95)
                 & ((off * off).sum(axis=1) <= tolerance**2 * length2))
        hits = np.zeros(both.shape, bool)
        hits[both] = mixed
        out[centre] |= hits
    return out


def _neutral_objects(saturation: np.ndarray, luma: np.ndarray, skin: np.ndarray, skin_saturation: float,
                     face_luma: float, settings: OcclusionSettings) -> tuple[np.ndarray, np.ndarray]:
    """(objects, excused), bool. Objects: pixels that are grey, black, white or metal rather than this face's skin:
    far less saturated than the skin (`neutral_ratio` x its median, `skin_saturation`), unless they are as pale and as bright as the
    face's own sheen. Sheen, powder and highlights under a hard light are as pale as a white object; where the
    sample above the nose tip shows them (pale pixels at least as bright as its median skin, `sheen_share` of it or
    more), pale pixels from the skin's 10th brightness percentile to the sheen's 95th are skin; darker (black, grey
    metal) or brighter (white) ones are still objects. Excused: the pale pixels that only this sheen rule took for
    skin. `face_luma`: the sample's median luminance."""
    neutral = saturation < settings.neutral_ratio * skin_saturation
    sheen = skin & neutral & (luma >= face_luma)  # pale and bright: an object there is rare
    if settings.sheen_share > 0 and sheen.sum() >= max(8, settings.sheen_share * skin.sum()):
        like_sheen = (luma >= np.percentile(luma[skin], 10)) & (luma <= np.percentile(luma[sheen], 95))
        return neutral & ~like_sheen, neutral & like_sheen
    return neutral, np.zeros(neutral.shape, bool)


def _seeded(candidate: np.ndarray, seed: np.ndarray, min_area: float, area: int | None = None) -> np.ndarray:
    """The connected pieces of `candidate` (uint8) that cover at least `min_area` x `area` pixels (default: the
    size of `seed`) of `seed` (bool)."""
    count, labels = cv2.connectedComponents(candidate, connectivity=8)
    if count <= 1:
        return np.zeros_like(candidate)
    inside = np.bincount(labels[seed].ravel(), minlength=count)
    keep = inside >= min_area * max(1, int(seed.sum()) if area is None else area)
    keep[0] = False
    return keep[labels].astype(np.uint8) * 255


def _touching(mask: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """uint8 {0, 255}: the connected pieces of `mask` (bool) that hold a pixel of `seed` (bool)."""
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    touching = np.zeros(count, bool)
    touching[np.unique(labels[seed & mask])] = True
    touching[0] = False
    return touching[labels].astype(np.uint8) * 255


def colour_bins(image: np.ndarray, bins: int) -> np.ndarray:
    """Per pixel, the index of its RGB cell in a bins^3 grid."""
    q = (image.astype(np.int32) * bins) >> 8
    return (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]


def cells_of(image: np.ndarray, sample: np.ndarray, bins: int) -> np.ndarray:
    """(bins, bins, bins) pixel counts of the `sample` region's colours."""
    counts = np.bincount(colour_bins(image, bins)[sample > 0].ravel(), minlength=bins**3)
    return counts.reshape(bins, bins, bins)


def grown_cells(seen: np.ndarray) -> np.ndarray:
    """The occupied cells (bool) grown by one cell along every channel (no wrap-around): colour tolerance."""
    grown = seen > 0
    for axis in range(3):
        before = grown.copy()
        lo, hi = [slice(None)] * 3, [slice(None)] * 3
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        grown[tuple(hi)] |= before[tuple(lo)]
        grown[tuple(lo)] |= before[tuple(hi)]
    return grown


def _like(image: np.ndarray, sample: np.ndarray, bins: int) -> np.ndarray:
    """(h, w) bool: pixels whose colour cell, or a neighbouring one, holds a pixel of the `sample` region."""
    if bins <= 0 or not sample.any():
        return np.zeros(image.shape[:2], bool)
    return grown_cells(cells_of(image, sample, bins)).ravel()[colour_bins(image, bins)]


def face_regions(landmarks: np.ndarray, to_roi, shape, face_width: float, settings: OcclusionSettings) -> dict | None:
    """The colour cue's regions at analysis scale (see `colour_occluders`), or None for an unknown layout."""
    layout = len(landmarks)
    if layout not in INNER_LIPS:
        return None
    hull_mask = np.zeros(shape, np.uint8)
    hull = cv2.convexHull(to_roi(landmarks).astype(np.float32))
    cv2.fillConvexPoly(hull_mask, np.round(hull).astype(np.int32), 255)
    zone = hull_mask
    if settings.reach * face_width >= 0.5:
        zone = cv2.dilate(hull_mask, disk(settings.reach * face_width))
    # Below the chin, within the face's width: occluders (microphones, cups, hands) come up from there.
    inset = settings.seed_inset * face_width
    xs, ys = hull[:, 0, 0], hull[:, 0, 1]
    below_chin = zone == 0
    zone = zone.copy()
    zone[max(0, int(ys.max() - inset)):, max(0, int(xs.min() + inset)) : max(0, int(np.ceil(xs.max() - inset)))] = 255
    below_chin &= zone > 0
    if inset >= 0.5:
        hull_mask = cv2.erode(hull_mask, disk(inset))
    nose_y = max(0, int(np.ceil(to_roi(landmarks[NOSE_TIP[layout]][None])[0, 1])))
    skin, seed = hull_mask.copy(), hull_mask
    skin[nose_y:] = 0
    seed = seed.copy()
    seed[:nose_y] = 0
    mouth = _polygon(to_roi(landmarks[list(INNER_LIPS[layout])]), shape, settings.mouth_dilate * face_width)
    lips = _polygon(to_roi(landmarks[list(OUTER_LIPS[layout])]), shape, 0.03 * face_width)
    lower_face = int(np.count_nonzero(seed))  # min_area is a share of this, wherever the seed is limited to
    if settings.seed_reach > 0:  # an occluder covers part of the lower face near the mouth, not only a cheek
        seed = seed & _polygon(to_roi(landmarks[list(OUTER_LIPS[layout])]), shape, settings.seed_reach * face_width)
    lips[mouth > 0] = 0
    nose = _polygon(cv2.convexHull(to_roi(landmarks[list(NOSE_BOTTOM[layout])]).astype(np.float32))[:, 0], shape,
                    settings.nose_dilate * face_width)
    # The background beside the cheeks (above the nose tip, beyond the zone): what an object is told from
    # where it sticks out of the face.
    background = np.zeros(shape, np.uint8)
    background[:nose_y] = 255
    background[zone > 0] = 0
    return {"skin": skin, "seed": seed, "lips": lips, "mouth": mouth, "zone": zone, "background": background,
            "nose": nose, "lower_face": lower_face, "below_chin": below_chin}


def _polygon(points: np.ndarray, shape, grow_px: float) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 255)
    if grow_px >= 0.5:
        mask = cv2.dilate(mask, disk(grow_px))
    return mask
