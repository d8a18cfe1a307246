"""A prepared video: everything a run computes from the video alone, kept across runs in the reuse cache.

One entry per (video bytes, frame rate, resolution, faces settings, face choice, occlusion, VAE weights, dtype):
the finished face pass (`latentsync.faces.prepared.PreparedFaces`: alignment, shots, occluders; the speaker choice
is baked in) and the VAE posterior moments of every edited crop, found again by the crop's content key. A later run on the same video with a new
audio track replays the face pass (no detection, no speaker pre-pass) and encodes no frame whose moments are there.
The store (`latentsync.utils.content_cache.EntryCache`) writes atomically, verifies every entry's hash on reading
and evicts the least recently used entries beyond its size limit; an entry that does not fit is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass

import torch

from latentsync.faces.prepared import PreparedFaces, PreparedFacesError
from latentsync.utils.content_cache import EntryCache, content_key, file_digest

logger = logging.getLogger(__name__)

PREPARED_VIDEO_FORMAT = 2  # bump when what an entry holds (or how a frame's moments are computed) changes


@dataclass
class PreparedVideo:
    faces: PreparedFaces
    moments: dict[str, torch.Tensor]  # crop key -> (2, 2, 4, h, w) [masked, reference] x [mean, std]


def vae_fingerprint(vae) -> str:
    """sha256 of the VAE's weights (names, dtypes, bytes), computed once per loaded VAE."""
    cached = getattr(vae, "_latentsync_fingerprint", None)
    if cached is None:
        digest = hashlib.sha256()
        for name, tensor in sorted(vae.state_dict().items()):
            digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
            digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
        cached = digest.hexdigest()
        vae._latentsync_fingerprint = cached
    return cached


def prepared_key(video_path: str, *, fps: float, resolution: int, faces_config, backend: str, choice: list,
                 occlusion: str | None, vae, encode_frames_per_call: int, mask_image_path: str | None = None) -> str:
    """The content key of a prepared video: every input that changes its face pass or its moments (`choice`: the
    user's face choice, index and position as given; the faces config holds the defaults)."""
    return content_key(format=PREPARED_VIDEO_FORMAT, video=file_digest(video_path), fps=fps, resolution=resolution,
                       faces=json.loads(json.dumps(asdict(faces_config), default=str)), backend=backend,
                       choice=json.loads(json.dumps(choice, default=str)), occlusion=occlusion, mask=mask_image_path,
                       vae=vae_fingerprint(vae), dtype=str(next(vae.parameters()).dtype),
                       encode_frames_per_call=encode_frames_per_call)


def load_prepared(cache: EntryCache, key: str) -> PreparedVideo | None:
    """The cached prepared video, or None (absent, or not readable as one: then it is recomputed)."""
    entry = cache.get(key)
    if entry is None:
        return None
    try:
        faces = PreparedFaces.from_tensors({k[len("faces."):]: v for k, v in entry.tensors.items()
                                            if k.startswith("faces.")}, entry.meta["faces"])
        keys = [bytes(row).hex() for row in entry.tensors["moments_keys"].tolist()]
        moments = dict(zip(keys, entry.tensors["moments"], strict=True))
    except (KeyError, ValueError, PreparedFacesError) as exc:
        logger.warning("ignoring prepared-video cache entry %s (%s); recomputing", cache.path_for(key), exc)
        return None
    return PreparedVideo(faces, moments)


def store_prepared(cache: EntryCache, key: str, faces: PreparedFaces, moments: dict[str, torch.Tensor]) -> None:
    """Write the entry (atomically; a full disk or an entry over the limit is a warning, never a failure). The
    moments are stored with their crop keys (16 bytes each): a later run finds them by its own crops."""
    tensors, meta = faces.to_tensors()
    keys = sorted(moments)
    stacked = torch.stack([moments[k] for k in keys]) if keys else torch.zeros(0)
    key_bytes = torch.tensor([list(bytes.fromhex(k)) for k in keys], dtype=torch.uint8).reshape(len(keys), 16)
    cache.put(key, {**{f"faces.{k}": v for k, v in tensors.items()}, "moments": stacked, "moments_keys": key_bytes},
              {"faces": meta, "format": PREPARED_VIDEO_FORMAT})
