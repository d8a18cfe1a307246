"""DeepCache for the lip-sync U-Net: reuse deep U-Net features across denoising steps (the official option).

The DeepCache package wraps the U-Net's down/mid/up blocks by attribute name; our U-Net keeps the official
module layout (down_blocks[i].resnets/attentions/downsamplers, mid_block, up_blocks[i]...), so the
package's Stable-Diffusion helper applies unchanged. Every `cache_interval`-th step (counted from each
chunk's first step) runs the full network; the others recompute only the shallow branch.
"""

from __future__ import annotations

from omegaconf import OmegaConf

from latentsync.config import CONFIG_DIR


def enable_deepcache(pipeline, cache_interval: int | None = None, cache_branch_id: int | None = None):
    """Turn DeepCache on for `pipeline` (needs `.unet` and `.scheduler`). Returns the helper (call `.disable()`)."""
    from DeepCache import DeepCacheSDHelper

    defaults = OmegaConf.load(CONFIG_DIR / "inference.yaml").deepcache
    helper = DeepCacheSDHelper(pipe=pipeline)
    helper.set_params(cache_interval=cache_interval or defaults.cache_interval,
                      cache_branch_id=defaults.cache_branch_id if cache_branch_id is None else cache_branch_id)
    helper.enable()
    pipeline.deepcache = helper
    return helper
