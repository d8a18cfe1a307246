"""A prepared video: everything a run computes from the video alone, kept across runs in the reuse cache.

One entry per (video bytes, frame rate, resolution, faces settings, face choice, occlusion, VAE weights, dtype):
the finished face pass (`latentsync.faces.prepared.PreparedFaces`: alignment, shots, occluders; the speaker choice
is baked in) and an index from each edited crop's content key to the shard entry holding its VAE posterior moments.
A later run on the same video with a new audio track replays the face pass (no detection, no speaker pre-pass) and
encodes no frame whose moments are there.

The moments live in shards (`cache.shard_mb` each, entries of the same cache) so that neither writing nor reading
them holds a whole video's moments in memory: a run writes a shard as soon as it has that many new moments
(`MomentsRecorder`) and reads one shard at a time when it needs a crop from it (`PreparedMoments`). The face pass's
occluder masks have shards of their own, for the same reason (`store_mask_shards`, written just before the entry;
`mask_shard_bytes`, read back one at a time into the run's on-disk `MaskStore`; one that is missing means the face
pass is run again). The index is written last, so a reader never finds an index before its shards. A moments shard
evicted since (least recently used first) or unreadable is a plain miss: those crops are encoded again, with the
same numbers. The store (`latentsync.utils.content_cache.EntryCache`) writes atomically and verifies every entry's
hash on reading.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
import torch

from latentsync.faces.prepared import PreparedFaces, PreparedFacesError
from latentsync.utils.content_cache import EntryCache, content_key, file_digest

logger = logging.getLogger(__name__)

PREPARED_VIDEO_FORMAT = 10  # bump when what an entry holds, or how its face pass (occluder masks included) or a
# frame's moments are computed, changes: older entries are then recomputed (4: the mouth model kept from what comes
# in; 5: objects followed only straight down below the chin, and followed where the face took them; 6: an elongated
# object's end takes the pale pixels the face excuses, a hand counts only with its fingers over the face, and grey
# objects before a dim face are candidates; 7: a hand found late is tracked back over the frames the palm detector
# skipped; 8: a grey lip ring is not taken for the lips' colours; 9: occluder masks stored compressed; 10: the
# occluder masks' bytes in shards of their own)


class PreparedMoments:
    """A prepared video's moments by crop key, read from their shard on demand (one shard in memory at a time)."""

    def __init__(self, cache: EntryCache, index: dict[str, str]):
        self.cache = cache
        self.index = index  # crop key -> shard key
        self._shard_key: str | None = None
        self._shard: dict[str, torch.Tensor] = {}

    def shard_of(self, key: str) -> str | None:
        return self.index.get(key)

    def get(self, key: str) -> torch.Tensor | None:
        """The crop's (2, 2, 4, h, w) moments, or None: not prepared, or its shard is gone or damaged."""
        shard_key = self.index.get(key)
        if shard_key is None:
            return None
        if shard_key != self._shard_key:
            self._shard_key, self._shard = shard_key, read_shard(self.cache, shard_key)
        return self._shard.get(key)


class MomentsRecorder:
    """Collects a run's moments for the reuse cache without holding them: new moments are written out in shards of
    about `shard_bytes` as they come; moments the run took from an earlier shard are indexed where they are."""

    def __init__(self, cache: EntryCache, entry_key: str, shard_bytes: int):
        self.cache, self.entry_key, self.shard_bytes = cache, entry_key, shard_bytes
        self.index: dict[str, str] = {}  # crop key -> shard key
        self._pending: dict[str, torch.Tensor] = {}
        self._pending_bytes = 0

    def reference(self, key: str, shard_key: str) -> None:
        self.index.setdefault(key, shard_key)

    def add(self, key: str, moments: torch.Tensor) -> None:
        if key in self.index or key in self._pending:
            return
        self._pending[key] = moments
        self._pending_bytes += moments.numel() * moments.element_size()
        if self._pending_bytes >= self.shard_bytes:
            self.flush()

    def flush(self) -> None:
        """Write the pending moments as one shard (a shard the cache does not keep leaves them unindexed)."""
        if not self._pending:
            return
        keys = list(self._pending)
        shard_key = content_key(format=PREPARED_VIDEO_FORMAT, entry=self.entry_key, crops=keys)
        tensors = {"moments": torch.stack([self._pending[k] for k in keys]), "keys": key_bytes(keys)}
        if self.cache.put(shard_key, tensors, {"format": PREPARED_VIDEO_FORMAT, "entry": self.entry_key}):
            self.index.update(dict.fromkeys(keys, shard_key))
        self._pending, self._pending_bytes = {}, 0

    def finish(self) -> dict[str, str]:
        """The index of every crop recorded (crop key -> shard key), once the last shard is written."""
        self.flush()
        return self.index


@dataclass
class PreparedVideo:
    faces: PreparedFaces
    moments: PreparedMoments


def key_bytes(keys: list[str]) -> torch.Tensor:
    """Crop keys (32 hex digits) as an (n, 16) uint8 tensor."""
    return torch.tensor([list(bytes.fromhex(k)) for k in keys], dtype=torch.uint8).reshape(len(keys), 16)


def key_strings(tensor: torch.Tensor) -> list[str]:
    return [bytes(row).hex() for row in tensor.tolist()]


def read_shard(cache: EntryCache, shard_key: str) -> dict[str, torch.Tensor]:
    """Crop key -> moments of one shard ({} when it is gone or not readable as a shard: then they are recomputed)."""
    entry = cache.get(shard_key)
    if entry is None:
        return {}
    try:  # each crop's own copy: a row kept by the run must not keep the whole shard's storage alive
        return {key: row.clone() for key, row in zip(key_strings(entry.tensors["keys"]), entry.tensors["moments"],
                                                      strict=True)}
    except (KeyError, ValueError) as exc:
        logger.warning("ignoring moments shard %s (%s); recomputing its frames", cache.path_for(shard_key), exc)
        return {}


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


def load_prepared(cache: EntryCache, key: str, mask_folder=None) -> PreparedVideo | None:
    """The cached prepared video (its face pass, its occluder masks in a temp file in `mask_folder`, and its
    moments' index: the moments are read when needed), or None (absent, or not readable as one: then it is
    recomputed)."""
    entry = cache.get(key)
    if entry is None:
        return None
    try:
        faces = PreparedFaces.from_tensors({k[len("faces."):]: v for k, v in entry.tensors.items()
                                            if k.startswith("faces.")}, entry.meta["faces"],
                                           mask_chunks=mask_shard_bytes(cache, entry.meta["mask_shards"]),
                                           mask_folder=mask_folder)
        shards = entry.meta["shards"]
        index = {crop: shards[i] for crop, i in zip(key_strings(entry.tensors["moments_keys"]),
                                                     entry.tensors["moments_shard"].tolist(), strict=True)}
    except (KeyError, IndexError, ValueError, PreparedFacesError) as exc:
        logger.warning("ignoring prepared-video cache entry %s (%s); recomputing", cache.path_for(key), exc)
        return None
    return PreparedVideo(faces, PreparedMoments(cache, index))


def mask_shard_bytes(cache: EntryCache, shard_keys: list[str]) -> Iterator[np.ndarray]:
    """The occluder masks' bytes, shard after shard (one in memory at a time); PreparedFacesError when one is gone."""
    for shard_key in shard_keys:
        shard = cache.get(shard_key)
        if shard is None or "occluder_zlib" not in shard.tensors:
            raise PreparedFacesError(f"its occluder masks' shard {shard_key} is gone")
        yield shard.tensors["occluder_zlib"].numpy()


def store_mask_shards(cache: EntryCache, key: str, faces: PreparedFaces, shard_bytes: int) -> list[str] | None:
    """Write the face pass's occluder masks in shards of about `shard_bytes`, read from disk one at a time; their
    keys, or None when the cache did not keep one (then the entry is not written: it could not be used)."""
    shard_keys = []
    for number, chunk in enumerate(faces.mask_chunks(shard_bytes)):
        shard_key = content_key(format=PREPARED_VIDEO_FORMAT, entry=key, masks=number)
        tensors = {"occluder_zlib": torch.frombuffer(chunk, dtype=torch.uint8)}  # a bytearray of its own: no copy
        if cache.put(shard_key, tensors, {"format": PREPARED_VIDEO_FORMAT, "entry": key}) is None:
            return None
        shard_keys.append(shard_key)
    return shard_keys


def store_prepared(cache: EntryCache, key: str, faces: PreparedFaces, index: dict[str, str], shard_bytes: int) -> None:
    """Write the entry: the face pass (its occluder masks in shards of about `shard_bytes`, written first) and the
    moments' index (crop key, 16 bytes, -> shard), after the shards themselves (`MomentsRecorder.finish`). Atomic;
    a full disk or an entry over the limit is a warning, never a failure."""
    mask_shards = store_mask_shards(cache, key, faces, shard_bytes)
    if mask_shards is None:
        return
    tensors, meta = faces.to_tensors(with_masks=False)
    crops = sorted(index)
    shards = sorted(set(index.values()))
    position = {shard: i for i, shard in enumerate(shards)}
    cache.put(key, {**{f"faces.{k}": v for k, v in tensors.items()}, "moments_keys": key_bytes(crops),
                    "moments_shard": torch.tensor([position[index[c]] for c in crops], dtype=torch.int32)},
              {"faces": meta, "shards": shards, "mask_shards": mask_shards, "format": PREPARED_VIDEO_FORMAT})
