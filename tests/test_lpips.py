"""LPIPS (VGG) without torchvision: metric behaviour, weight loading, and equality with the lpips package."""

from __future__ import annotations

import copy
import sys
import types
import warnings

import pytest
import torch

from latentsync.models.lpips import LPIPS, TAP_CHANNELS, LPIPSWeightsError, VGG16Trunk, find_lpips_heads


def _random_trunk_lpips(**kwargs) -> LPIPS:
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="trunk.*NOT meaningful"):
        return LPIPS(trunk_path=None, **kwargs)


def _images(seed: int, batch: int = 2, size: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, size, size, generator=g) * 2 - 1


@pytest.fixture(scope="module")
def metric():
    return _random_trunk_lpips()


def test_zero_for_identical_and_larger_for_more_different(metric):
    a = _images(0)
    near = (a + 0.05 * _images(1)).clamp(-1, 1)
    far = _images(2)
    with torch.no_grad():
        same, small, large = metric(a, a.clone()), metric(a, near), metric(a, far)
    assert same.shape == (2, 1, 1, 1)
    assert torch.all(same.abs() < 1e-7)
    assert torch.all(small > 1e-4) and torch.all(large > small)


def test_gradients_reach_the_prediction_only(metric):
    pred = _images(3).requires_grad_(True)
    metric.lower_half_loss(pred, _images(4)).backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()
    half = pred.shape[2] // 2
    assert pred.grad[:, :, half:].abs().sum() > 0
    assert torch.all(pred.grad[:, :, :half] == 0)  # upper half never enters the loss
    assert all(p.grad is None and not p.requires_grad for p in metric.parameters())


def test_lower_half_loss_is_lpips_of_the_lower_rows(metric):
    pred, target = _images(5, size=40), _images(6, size=40)
    with torch.no_grad():
        expected = metric(pred[:, :, 20:], target[:, :, 20:]).mean()
        torch.testing.assert_close(metric.lower_half_loss(pred, target), expected, atol=0, rtol=0)


def test_stays_in_eval_mode(metric):
    metric.train()
    assert not metric.training and not any(m.training for m in metric.modules())


def test_normalize_flag_accepts_unit_range(metric):
    a, b = _images(7), _images(8)
    with torch.no_grad():
        torch.testing.assert_close(metric(a, b), metric((a + 1) / 2, (b + 1) / 2, normalize=True), atol=1e-6, rtol=1e-5)


def test_shipped_heads_are_loaded_without_importing_lpips(metric):
    heads = find_lpips_heads()
    if heads is None:
        pytest.skip("lpips package not installed (its wheel ships the heads)")
    assert "lpips" not in sys.modules or not hasattr(sys.modules["lpips"], "LPIPS")
    state = torch.load(heads, map_location="cpu", weights_only=True)
    for i, channels in enumerate(TAP_CHANNELS):
        assert torch.equal(metric.lins[i].model[1].weight, state[f"lin{i}.model.1.weight"])
        assert metric.lins[i].model[1].weight.shape == (1, channels, 1, 1)
    assert metric.heads_source == str(heads)


def test_torchvision_format_trunk_file_is_loaded(tmp_path):
    torch.manual_seed(1)
    trunk = VGG16Trunk()
    torchvision_like = {
        **trunk.state_dict(),
        "classifier.0.weight": torch.zeros(2, 2),
        "classifier.0.bias": torch.zeros(2),
    }
    path = tmp_path / "vgg16-397923af.pth"
    torch.save(torchvision_like, path)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*trunk.*")
        loaded = LPIPS(trunk_path=path)
    assert loaded.trunk_source == str(path)
    for key, value in trunk.state_dict().items():
        assert torch.equal(loaded.net.state_dict()[key], value), key
    assert [k for k in trunk.state_dict()][:4] == [
        "features.0.weight",
        "features.0.bias",
        "features.2.weight",
        "features.2.bias",
    ]


def test_bad_or_missing_weights_are_clear_errors(tmp_path):
    bad = tmp_path / "not_vgg.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, bad)
    with pytest.raises(LPIPSWeightsError, match="not a torchvision VGG16"):
        LPIPS(trunk_path=bad)
    with pytest.raises(LPIPSWeightsError, match="trunk weights not found"):
        LPIPS(trunk_path=None, require_pretrained=True)


def test_equals_the_lpips_package_with_the_same_random_trunk(monkeypatch):
    """Build lpips.LPIPS(net='vgg') around a copy of our trunk (torchvision stubbed) and compare numbers."""
    if find_lpips_heads() is None:
        pytest.skip("lpips package not installed")
    ours = _random_trunk_lpips()
    trunk_copy = copy.deepcopy(ours.net.features)
    fake_torchvision = types.ModuleType("torchvision")
    fake_torchvision.models = types.SimpleNamespace(
        vgg16=lambda pretrained=False, **_: types.SimpleNamespace(features=trunk_copy)
    )
    monkeypatch.setitem(sys.modules, "torchvision", fake_torchvision)
    saved = {name: mod for name, mod in sys.modules.items() if name == "lpips" or name.startswith("lpips.")}
    for name in saved:
        monkeypatch.delitem(sys.modules, name)
    try:
        import lpips

        reference = lpips.LPIPS(net="vgg", pnet_rand=True, verbose=False)
    finally:
        for name in [n for n in sys.modules if n == "lpips" or n.startswith("lpips.")]:
            del sys.modules[name]
    a, b = _images(9, batch=3, size=72), _images(10, batch=3, size=72)
    with torch.no_grad():
        expected = reference(a, b)
        got = ours(a, b)
        expected_unit = reference((a + 1) / 2, (b + 1) / 2, normalize=True)
    torch.testing.assert_close(got, expected, atol=1e-7, rtol=1e-6)
    torch.testing.assert_close(ours((a + 1) / 2, (b + 1) / 2, normalize=True), expected_unit, atol=1e-7, rtol=1e-6)
    assert float(got.min()) > 0
