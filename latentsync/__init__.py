"""LatentSync: audio-conditioned latent diffusion for lip sync (checkpoint-compatible re-implementation).

`latentsync.lipsync(video, audio, out, **options)` is the one-call Python API (see latentsync/api.py).
"""

__version__ = "0.1.0"


def __getattr__(name):
    # Imported lazily so that `import latentsync` stays cheap for tools that only need a submodule.
    if name in ("lipsync", "LipsyncOptions", "build_pipeline"):
        from latentsync import api

        return getattr(api, name)
    raise AttributeError(f"module 'latentsync' has no attribute {name!r}")
