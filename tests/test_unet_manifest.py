"""The U-Net built from every official config has the official state dict: keys, shapes, dtypes, order.

Models are built on the `meta` device, so even the 1.27 B-parameter stage-2 model costs no memory.
"""

from __future__ import annotations

import re

import pytest
import torch

from latentsync.config import load_config, model_config
from latentsync.models.unet import UNet3DConditionModel
from tests.helpers import shared_json, state_dict_layout

# manifest name -> every config whose model section it describes (the _512 twins share the model)
MANIFEST_CONFIGS = {
    "stage2": ["stage2", "stage2_512"],
    "stage1": ["stage1", "stage1_512"],
    "stage2_efficient": ["stage2_efficient"],
}
CASES = [(manifest, config) for manifest, configs in MANIFEST_CONFIGS.items() for config in configs]


def _manifest(name: str) -> dict:
    return shared_json("reference", f"unet_manifest_{name}.json")


def _build_meta(config_name: str) -> UNet3DConditionModel:
    with torch.device("meta"):
        return UNet3DConditionModel.from_config(model_config(load_config(f"configs/unet/{config_name}.yaml")))


@pytest.mark.needs_shared
@pytest.mark.parametrize("manifest_name,config_name", CASES)
def test_state_dict_matches_manifest_in_order(manifest_name, config_name):
    manifest = _manifest(manifest_name)
    assert config_name in manifest["identical_model_sections"]
    unet = _build_meta(config_name)
    ours = state_dict_layout(unet.state_dict())
    theirs = manifest["state_dict"]
    for i, (mine, official) in enumerate(zip(ours, theirs, strict=False)):
        assert mine == official, f"state-dict entry {i} differs: ours {mine}, official {official}"
    assert len(ours) == len(theirs) == manifest["num_state_dict_keys"]


@pytest.mark.needs_shared
@pytest.mark.parametrize("manifest_name", list(MANIFEST_CONFIGS))
def test_counts_buffers_modules_and_config(manifest_name):
    manifest = _manifest(manifest_name)
    unet = _build_meta(MANIFEST_CONFIGS[manifest_name][0])
    assert sum(p.numel() for p in unet.parameters()) == manifest["num_params"]
    assert sum(t.numel() for t in unet.state_dict().values()) == manifest["num_state_dict_elements"]
    assert [name for name, _ in unet.named_buffers()] == manifest["state_dict_buffer_keys"]
    assert [name for name, _ in unet.named_children()] == manifest["top_level_modules"]
    resolved = {k: v for k, v in unet.config.items() if not k.startswith("_")}
    assert resolved == manifest["resolved_config"]


def _zero_at_init_rule(key: str) -> bool:
    """conv_in, conv_out and motion-module proj_out are zero-initialised; norm biases default to zero."""
    if key.split(".")[0] in ("conv_in", "conv_out") or "temporal_transformer.proj_out." in key:
        return True
    norm_bias = re.search(r"(^|\.)(norm\w*|norms\.\d+|ff_norm|conv_norm_out)\.bias$", key)
    return norm_bias is not None


@pytest.mark.needs_shared
def test_zero_initialised_tensors_follow_the_official_rule():
    """The rule reproduces the official all-zero list, and a real (tiny) model is zero exactly there."""
    manifest = _manifest("stage2")
    keys = [entry[0] for entry in manifest["state_dict"]]
    assert [k for k in keys if _zero_at_init_rule(k)] == manifest["all_zero_at_init"]

    torch.manual_seed(0)
    tiny = UNet3DConditionModel.from_config(model_config(load_config("configs/unet/tiny.yaml")))
    zero = [k for k, t in tiny.state_dict().items() if not t.any()]
    assert zero == [k for k in tiny.state_dict() if _zero_at_init_rule(k)]
    # attn2 is NOT zero-initialised (default nn.Linear init), unlike the motion modules' proj_out
    assert tiny.down_blocks[0].attentions[0].transformer_blocks[0].attn2.to_k.weight.abs().sum() > 0


def test_positional_encoding_is_interleaved_sin_cos():
    from latentsync.models.motion_module import sinusoidal_positions

    pe = sinusoidal_positions(24, 8)[0]
    position = torch.arange(24.0)[:, None]
    freq = 10000.0 ** (-torch.arange(0, 8, 2) / 8)
    torch.testing.assert_close(pe[:, 0::2], torch.sin(position * freq))
    torch.testing.assert_close(pe[:, 1::2], torch.cos(position * freq))
