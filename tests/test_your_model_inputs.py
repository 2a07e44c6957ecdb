"""Your model's input conventions (NHWC, BGR, mean-only) and sources (.pt2), and label readers of any scheme."""

import numpy as np
import pytest
import torch

from edgekit.errors import EdgekitError
from edgekit.models.byom import ByomSpec, load_user_model


def test_nhwc_bgr_model_sees_the_same_image_as_its_nchw_rgb_twin():
    """edgekit feeds NCHW RGB; the swap to the model's convention is folded in front of it."""

    torch.manual_seed(0)
    twin = load_user_model(ByomSpec("byom_models:style_a", input_shape=(1, 3, 64, 64), landmarks_output="output0",
                                    mean=(0.5,) * 3))
    swapped = load_user_model(ByomSpec("byom_models:nhwc_bgr", input_shape=(1, 64, 64, 3), layout="NHWC",
                                       color="BGR", landmarks_output="output0", mean=(0.5,) * 3))
    swapped.module.model.inner.load_state_dict(twin.module.model.state_dict())
    assert swapped.input_shape == (1, 3, 64, 64)  # canonical NCHW whatever the model's own layout
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(swapped.module(x)[0], twin.module(x)[0], atol=1e-6)
    with pytest.raises(EdgekitError, match="--layout 'NWHC': expected NCHW or NHWC"):
        load_user_model(ByomSpec("byom_models:nhwc_bgr", input_shape=(1, 64, 64, 3), layout="NWHC"))


def test_an_onnx_model_with_a_fixed_batch_of_one_takes_edgekits_batches(tmp_path):
    """torch.onnx.export without dynamic axes fixes batch 1, as many third-party files do: edgekit feeds it in
    chunks (the last padded), so teaching and scoring on batches of 64 work and give the per-image outputs."""
    import byom_models

    torch.manual_seed(0)
    model = byom_models.style_a().eval()
    path = tmp_path / "fixed.onnx"
    torch.onnx.export(model, torch.zeros(1, 3, 64, 64), str(path), input_names=["image"], output_names=["output0"],
                      dynamo=False)
    loaded = load_user_model(ByomSpec(str(path), landmarks_output="output0", mean=(0.5,) * 3))
    assert loaded.input_shape == (1, 3, 64, 64)
    x = torch.rand(5, 3, 64, 64)
    with torch.no_grad():
        expected = torch.cat([model(x[i:i + 1]) for i in range(5)])  # the reference takes normalised input
        got = loaded.reference(x)[0]
    assert got.shape[0] == 5 and torch.allclose(got.reshape(5, -1), expected.reshape(5, -1), atol=1e-5)


def test_pt2_archive_is_a_model_source(tmp_path):
    import byom_models

    model = byom_models.StyleC().eval()
    program = torch.export.export(model, (torch.zeros(1, 3, 64, 64),))
    torch.export.save(program, str(tmp_path / "c.pt2"))
    loaded = load_user_model(ByomSpec(str(tmp_path / "c.pt2"), input_shape=(1, 3, 64, 64),
                                      landmarks_output="output0", scheme="wflw98"))
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(loaded.module(x)[0], model(x), atol=1e-6)
    assert loaded.contract.shapes == [(98, 2)]
    (tmp_path / "bad.pt2").write_bytes(b"not a zip")
    with pytest.raises(EdgekitError, match="bad.pt2: not a torch.export archive"):
        load_user_model(ByomSpec(str(tmp_path / "bad.pt2"), input_shape=(1, 3, 64, 64)))


def test_planar_pixel_landmarks_decode_and_encode_back():
    from edgekit.outputs import OutputContract
    from edgekit.schemes import FIVE

    c = OutputContract(["points"], "points", "planar", "pixels", (64, 64), FIVE, None, [(10,)])
    unit = torch.rand(3, 5, 2)
    raw = c.encode(unit)
    assert raw.shape == (3, 10) and torch.allclose(raw[:, :5], unit[:, :, 0] * 64)  # x0..x4 first, in pixels
    assert torch.allclose(c.decode((raw,)), unit, atol=1e-6)
    assert np.allclose(c.decode((raw.numpy(),)), unit.numpy(), atol=1e-6)  # numpy too (the bench runner)


def test_a_contract_student_keeps_the_layout_of_the_checkpoint_it_starts_from():
    """Every layout takes the same weights, so a contract student built without the init's layout would load them
    silently with other strides: it must take the layout with the width and head."""
    from types import SimpleNamespace

    from edgekit.compress.distill import contract_student
    from edgekit.config.recipe import StudentSpec
    from edgekit.models.checkpoint import load_checkpoint
    from edgekit.outputs import edgekit_contract

    contract = edgekit_contract(112)
    reference = [np.zeros((4, 68, 2), np.float32), np.zeros((4, 3), np.float32)]
    data = SimpleNamespace(val="v", arrays=lambda spec: {"reference": reference},
                           mean_teacher_landmarks=lambda: torch.full((68, 2), 0.5))
    ctx = SimpleNamespace(contract=contract, input_size=112, data=data)
    init = "zoo:facial68-student-photos-w075-h32-early"
    student, arch, info = contract_student(StudentSpec(init=init), ctx)
    assert arch["arch_kwargs"]["layout"] == "early-stride" and info["init_tensors_copied"] == info["init_tensors_total"]
    zoo, _ = load_checkpoint(init)
    x = torch.rand(2, 3, 112, 112)
    with torch.no_grad():
        assert torch.allclose(student.eval()(x)[0], zoo(x)[0], atol=1e-5)  # the zoo student's own function
