"""Adapters: entry-point discovery (Vigil's own and a site's), TorchScript and module loading,
safetensors and state-dict weights, the preprocessing spec."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from models.adapters import available_adapters, load_spec, make_adapter
from models.adapters.base import PreprocessSpec
from models.demo.net import DemoCNN
from vigil.errors import InvalidInputError

SPEC = """\
[rescoring]
adapter = "{adapter}"
class = "models.demo.net:DemoCNN"
init = {{ width = 8 }}
weights = "{weights}"
version = "t-1"

[rescoring.preprocess]
window_level = 40
window_width = 80
size = 32
mean = 0.5
std = 0.25
"""


def _spec(tmp_path: Path, adapter: str, weights: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(SPEC.format(adapter=adapter, weights=weights))
    return path


@pytest.fixture
def net() -> DemoCNN:
    torch.manual_seed(0)
    m = DemoCNN(width=8)
    with torch.no_grad():  # non-trivial batch-norm statistics
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
    return m.eval()


def test_builtin_adapters_are_entry_points() -> None:
    found = available_adapters()
    assert found["torchscript"] == "models.adapters.torchscript:TorchScriptAdapter"
    assert found["module"] == "models.adapters.module:ModuleAdapter"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_safetensors_and_state_dict_agree(tmp_path: Path, net: DemoCNN) -> None:
    save_file(net.state_dict(), str(tmp_path / "w.safetensors"))
    torch.save(net.state_dict(), tmp_path / "w.pt")
    torch.jit.save(torch.jit.script(net), str(tmp_path / "w.ts"))
    x = torch.randn(5, 1, 32, 32)
    with torch.no_grad():
        expected = torch.sigmoid(net(x))
    outs = {}
    for adapter, weights in (
        ("module", "w.safetensors"),
        ("module", "w.pt"),
        ("torchscript", "w.ts"),
    ):
        spec = load_spec(_spec(tmp_path, adapter, weights, f"{adapter}-{weights}.toml"))
        a = make_adapter(spec).load("cpu")
        outs[weights] = a.score_batch(x)
        torch.testing.assert_close(outs[weights], expected)
        assert len(a.sha256) == 64 and a.version == "t-1"
    # the hash tells weights and preprocessing apart
    s1 = make_adapter(load_spec(_spec(tmp_path, "module", "w.safetensors", "a.toml")))
    s2 = make_adapter(s1.spec.with_preprocess(window_level=500.0))
    assert s1.sha256 != s2.sha256


def test_preprocess_spec_matches_independent_computation() -> None:
    hu = np.array([[-1000, 0, 40], [80, 79, 1000]], dtype=np.float32)
    spec = PreprocessSpec(window_level=40, window_width=80, size=2, mean=0.5, std=0.25)
    hu2 = np.repeat(np.repeat(hu, 1, 0), 1, 1)
    x = spec.apply(hu2[:, :2])  # 2 x 2, no resize
    lo, hi = 0.0, 80.0
    expected = (np.clip((hu2[:, :2] - lo) / (hi - lo), 0, 1) - 0.5) / 0.25
    np.testing.assert_allclose(x[0].numpy(), expected, rtol=1e-6)
    big = PreprocessSpec(40, 80, size=16).apply(np.full((64, 64), 60.0, np.float32))
    assert big.shape == (1, 16, 16)
    np.testing.assert_allclose(big.numpy(), 0.75, rtol=1e-5)


def test_site_adapter_found_through_entry_points(tmp_path: Path, monkeypatch, net) -> None:
    """A site's own package declares an adapter; Vigil finds it without any change."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "mysite_adapter.py").write_text(
        textwrap.dedent(
            """
            import torch
            from models.adapters.base import RescoringAdapter

            class HalfAdapter(RescoringAdapter):
                '''A site model: always 0.5 (a stand-in for a vendor SDK call).'''
                def _build(self, device):
                    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(1))
                def score_batch(self, batch):
                    return torch.full((batch.shape[0],), 0.5)
            """
        )
    )
    dist = site / "mysite_adapter-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mysite-adapter\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[vigil.rescoring_adapters]\nmysite = mysite_adapter:HalfAdapter\n"
    )
    monkeypatch.syspath_prepend(str(site))
    assert available_adapters()["mysite"] == "mysite_adapter:HalfAdapter"
    save_file(net.state_dict(), str(tmp_path / "w.safetensors"))
    spec = load_spec(_spec(tmp_path, "module", "w.safetensors"))
    a = make_adapter(spec, "mysite").load("cpu")  # --adapter mysite overrides the spec
    assert a.score_batch(torch.zeros(3, 1, 32, 32)).tolist() == [0.5, 0.5, 0.5]
    with pytest.raises(InvalidInputError, match="no re-scoring adapter named 'nope'"):
        make_adapter(spec, "nope")


def test_spec_errors_name_key(tmp_path: Path, net) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[rescoring]\nadapter = "module"\n[rescoring.preprocess]\nwindow_level = 40\n')
    with pytest.raises(InvalidInputError, match=r"bad.toml: key 'window_width': missing"):
        load_spec(bad)
    spec = load_spec(_spec(tmp_path, "module", "missing.safetensors"))
    with pytest.raises(InvalidInputError, match="key 'weights'"):
        make_adapter(spec).load("cpu")
    torch.save({"w": torch.zeros(1)}, tmp_path / "junk.pt")
    spec = load_spec(_spec(tmp_path, "torchscript", "junk.pt", "ts.toml"))
    with pytest.raises(InvalidInputError, match="not a TorchScript file"):
        make_adapter(spec).load("cpu")
