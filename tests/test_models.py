"""Model families, checkpoints (safetensors + JSON, never pickle) and bring-your-own models."""

import json

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from edgekit.errors import EdgekitError
from edgekit.models.byom import load_byom
from edgekit.models.checkpoint import CheckpointMeta, load_checkpoint, read_meta, save_checkpoint
from edgekit.models.registry import build, count_macs_params

ALLOWED = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.AdaptiveAvgPool2d, nn.MaxPool2d, nn.AvgPool2d,
           nn.Linear, nn.Flatten, nn.Identity, nn.Sequential)


@pytest.mark.parametrize("arch, budget", [("resnet", 200e6), ("mobile", 20e6)])
def test_families_meet_their_mac_budgets_and_output_contract(arch, budget):
    model = build(arch).eval()
    macs, params = count_macs_params(model)
    assert macs <= budget, f"{arch}: {macs / 1e6:.1f} MMACs"
    lm, st = model(torch.zeros(2, 3, 112, 112))
    assert lm.shape == (2, 68, 2) and st.shape == (2, 3)


@pytest.mark.parametrize("arch", ["resnet", "mobile"])
def test_families_use_only_portable_ops(arch):
    leaves = [m for m in build(arch).modules() if not list(m.children())]
    bad = {type(m).__name__ for m in leaves if not isinstance(m, ALLOWED)}
    assert not bad, f"ops outside conv/BN/ReLU/pool/linear: {bad}"


def test_width_multiplier_shrinks_the_student():
    assert count_macs_params(build("mobile", width=0.5))[0] < 0.6 * count_macs_params(build("mobile"))[0]


@pytest.mark.parametrize(("layout", "macs_share"), [("early-stride", 0.6), ("early-stride-14", 0.7)])
def test_the_early_stride_layouts_take_a_default_students_weights_with_fewer_macs(tmp_path, layout, macs_share):
    default = build("mobile", width=0.75, head_channels=32, head_hidden=256).eval()
    early = build("mobile", width=0.75, head_channels=32, head_hidden=256, layout=layout).eval()
    early.load_state_dict(default.state_dict())  # same shapes: the zoo's relayout warm start relies on it
    assert early.spatial == default.spatial == 7
    assert count_macs_params(early)[0] < macs_share * count_macs_params(default)[0]
    x = torch.rand(1, 3, 112, 112)
    assert not torch.allclose(early(x)[0], default(x)[0])  # the strides did move
    meta = CheckpointMeta(arch="mobile", arch_kwargs={"width": 0.75, "head_channels": 32, "head_hidden": 256,
                                                      "layout": layout})
    loaded, _ = load_checkpoint(save_checkpoint(tmp_path / "early.safetensors", early, meta))
    assert torch.allclose(loaded(x)[0], early(x)[0], atol=1e-5)
    with pytest.raises(EdgekitError, match="unknown student layout 'late'; expected one of default, early-stride, "
                                           "early-stride-14"):
        build("mobile", layout="late")


def test_checkpoint_round_trip_in_fp16_keeps_outputs_and_metadata(tmp_path):
    model = build("mobile", width=0.5).eval()
    meta = CheckpointMeta(arch="mobile", arch_kwargs={"width": 0.5}, metrics={"nme": 0.05})
    path = save_checkpoint(tmp_path / "m.safetensors", model, meta, half=True)
    loaded, meta2 = load_checkpoint(path)
    x = torch.randn(1, 3, 112, 112)
    with torch.no_grad():
        assert torch.allclose(model(x)[0], loaded(x)[0], atol=2e-3)
    assert meta2.arch == "mobile" and meta2.metrics == {"nme": 0.05} and meta2.mean == (0.5, 0.5, 0.5)
    assert path.read_bytes()[:8] != b"\x80\x04\x95"  # not a pickle
    assert not list(tmp_path.glob("*.tmp"))


def test_loading_a_plain_safetensors_file_says_what_is_missing(tmp_path):
    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(EdgekitError, match="no 'edgekit' metadata; use --model/--weights"):
        read_meta(tmp_path / "plain.safetensors")


def test_weights_that_do_not_fit_the_architecture_are_a_clear_error(tmp_path):
    meta = CheckpointMeta(arch="mobile", arch_kwargs={"width": 1.0})
    save_checkpoint(tmp_path / "m.safetensors", build("mobile", width=0.5), meta)
    with pytest.raises(EdgekitError, match="weights do not match architecture 'mobile'"):
        load_checkpoint(tmp_path / "m.safetensors")


def test_unknown_zoo_name_lists_what_is_shipped():
    with pytest.raises(EdgekitError, match="no zoo model 'nope'"):
        read_meta("zoo:nope")


def test_byom_multi_output_dict_model_with_declared_landmarks(tmp_path):
    from byom_models import MultiHead

    save_file(MultiHead().state_dict(), str(tmp_path / "w.safetensors"))
    m = load_byom("byom_models:multi_head", tmp_path / "w.safetensors", (1, 3, 64, 64),
                  landmarks_output="points")
    assert m.output_names == ["points", "logits", "embedding"]
    assert m.output_shapes == [(1, 136), (1, 5), (1, 16)]
    outs = m.module(torch.zeros(2, 3, 64, 64))
    assert isinstance(outs, tuple) and outs[1].shape == (2, 5)


def test_byom_tuple_outputs_and_weights_only_torch_file(tmp_path):
    from byom_models import TupleModel

    torch.save({"state_dict": TupleModel().state_dict()}, tmp_path / "w.pt")
    m = load_byom("byom_models:tuple_model", tmp_path / "w.pt", (1, 3, 32, 32), output_names=["map", "pooled"])
    assert m.output_names == ["map", "pooled"] and m.landmarks_output is None


def test_byom_refuses_pickled_objects(tmp_path):
    torch.save({"state_dict": {"x": torch.zeros(1)}, "evil": object()}, tmp_path / "w.pt")
    with pytest.raises(EdgekitError, match="cannot load weights"):
        load_byom("byom_models:tuple_model", tmp_path / "w.pt", (1, 3, 32, 32))


@pytest.mark.parametrize(
    "spec, kwargs, message",
    [
        ("byom_models", {}, "expected 'package.module:factory'"),
        ("no_such_module:f", {}, "cannot import 'no_such_module'"),
        ("byom_models:missing", {}, "has no callable 'missing'"),
        ("byom_models:not_a_module", {}, "expected a torch nn.Module"),
        ("byom_models:multi_head", {"landmarks_output": "logits"}, "needs (N, 136) or (N, 68, 2)"),
        ("byom_models:multi_head", {"landmarks_output": "nope"}, "is not an output"),
    ],
)
def test_byom_errors(spec, kwargs, message):
    with pytest.raises(EdgekitError) as err:
        load_byom(spec, None, (1, 3, 32, 32), **kwargs)
    assert message in str(err.value)


def test_checkpoint_metadata_is_plain_json(tmp_path):
    path = save_checkpoint(tmp_path / "m.safetensors", build("mobile", width=0.25),
                           CheckpointMeta(arch="mobile", arch_kwargs={"width": 0.25}))
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    header = json.loads(path.read_bytes()[8:8 + header_len])
    assert json.loads(header["__metadata__"]["edgekit"])["format"] == "edgekit-checkpoint/1"


def test_a_contract_students_checkpoint_loads_and_a_wild_size_inside_its_contract_does_not(tmp_path):
    """Compress writes your model's student with its output contract in arch_kwargs (nested names and sizes):
    `predict --weights`, `teacher publish` and scripts load it; a huge size hidden in the nesting is refused."""
    from edgekit.outputs import OutputContract

    contract = OutputContract(["landmarks"], shapes=[(68, 2)], units="pixels").to_json()
    kwargs = {"width": 0.25, "contract": contract, "probabilities": []}
    model = build("mobile-contract", **kwargs).eval()
    meta = CheckpointMeta(arch="mobile-contract", arch_kwargs=kwargs)
    path = save_checkpoint(tmp_path / "c.safetensors", model, meta)
    loaded, meta = load_checkpoint(path)
    x = torch.rand(1, 3, 112, 112)
    with torch.no_grad():
        assert torch.allclose(loaded(x)[0], model(x)[0]) and meta.arch_kwargs["contract"]["units"] == "pixels"
    wild = {**kwargs, "contract": {**contract, "shapes": [[68, 2], [10**9]]}}
    save_checkpoint(path, model, CheckpointMeta(arch="mobile-contract", arch_kwargs=wild))
    with pytest.raises(EdgekitError, match="metadata key 'arch_kwargs'"):
        read_meta(path)
