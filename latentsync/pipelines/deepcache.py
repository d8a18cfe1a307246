"""DeepCache for the lip-sync U-Net: reuse deep U-Net features across denoising steps (the official option).

The DeepCache package wraps the U-Net's down/mid/up blocks by attribute name; our U-Net keeps the official
module layout (down_blocks[i].resnets/attentions/downsamplers, mid_block, up_blocks[i]...), so the
package's Stable-Diffusion helper applies unchanged. Every `cache_interval`-th step (counted from each
chunk's first step) runs the full network; the others recompute only the shallow branch.
"""

from __future__ import annotations

from latentsync.pipelines.settings import DeepCacheSettings, inference_settings


def packaged_deepcache_settings() -> DeepCacheSettings:
    """The `deepcache:` section of the packaged configs/inference.yaml (cache_interval, cache_branch_id)."""
    return inference_settings().deepcache


def enable_deepcache(pipeline, settings: DeepCacheSettings | None = None):
    """Turn DeepCache on for `pipeline` (needs `.unet` and `.scheduler`). Returns the helper (call `.disable()`).

    `settings`: for a run that wants other values than the packaged ones (`packaged_deepcache_settings()`).
    """
    from DeepCache import DeepCacheSDHelper

    settings = packaged_deepcache_settings() if settings is None else settings
    helper = DeepCacheSDHelper(pipe=pipeline)
    helper.set_params(cache_interval=settings.cache_interval, cache_branch_id=settings.cache_branch_id)
    helper.enable()
    pipeline.deepcache = helper
    return helper
