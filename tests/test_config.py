"""Recipes and targets: every shipped file loads; bad ones fail with file:line, key path, given and allowed."""

from pathlib import Path

import pytest

from edgekit.config.recipe import load_recipe
from edgekit.config.target import load_target
from edgekit.errors import EdgekitError

ROOT = Path(__file__).resolve().parents[1]
GOOD = """name: mine
teacher: zoo:facial68-teacher
student: {arch: mobile, width: 0.5}
stages:
  - distill:
      epochs: 2
  - quantize:
      mode: ptq
"""


@pytest.mark.parametrize("path", sorted((ROOT / "recipes").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_recipes_load(path):
    assert load_recipe(path).name == path.stem


@pytest.mark.parametrize("path", sorted((ROOT / "targets").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_targets_load(path):
    assert load_target(path).name == path.stem


def test_required_recipes_and_targets_ship():
    assert {p.stem for p in (ROOT / "recipes").glob("*.yaml")} >= {
        "distill_int8", "prune_int8", "distill_prune_int8", "ptq_int8", "fp16"}
    assert {p.stem for p in (ROOT / "targets").glob("*.yaml")} >= {"cpu", "gpu", "jetson", "mobile"}


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("      epochs: 2", "      epoch: 2", ":6: stages[0].distill.epoch: unknown key (given 2); allowed keys: "
                                             "batch_size, epochs, loss, lr, patience, pool, pool_augment, "
                                             "steps_per_epoch"),
        ("      epochs: 2", "      epochs: ten", ":6: stages[0].distill.epochs: Input should be a valid integer"),
        ("      epochs: 2", "      epochs: 0",
         ":6: stages[0].distill.epochs: Input should be greater than or equal to 1"),
        ("      mode: ptq", "      mode: dynamic", ":8: stages[1].quantize.mode: Input should be 'ptq' or 'qat' "
                                                  "(given 'dynamic')"),
        ("student: {arch: mobile, width: 0.5}\n", "", ":1: (top level): a distill stage needs a student"),
        ("  - distill:\n      epochs: 2\n  - quantize:\n      mode: ptq\n",
         "  - quantize: {}\n  - distill: {}\n", ":1: (top level): quantize or fp16 must be the last stage"),
        ("name: mine", "name: [unclosed", ":2: invalid YAML: expected ',' or ']'"),
    ],
)
def test_bad_recipes_name_file_line_key_and_allowed_values(tmp_path, cli, old, new, expected):
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace(old, new))
    with pytest.raises(EdgekitError) as err:
        load_recipe(bad)
    assert expected in str(err.value) and str(bad) in str(err.value)
    r = cli("recipes", "show", str(bad))
    assert r.returncode == 2 and expected in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_target_host_must_be_safe_for_ssh(tmp_path):
    text = (ROOT / "targets" / "jetson.yaml").read_text().replace("host: null", 'host: "me@jetson; rm -rf /"')
    (tmp_path / "t.yaml").write_text(text)
    with pytest.raises(EdgekitError, match=r"t.yaml:9: host: host must look like user@host.*given .me@jetson; rm"):
        load_target(tmp_path / "t.yaml")


def test_unknown_names_list_what_exists(cli):
    r = cli("compress", "--recipe", "nope")
    assert r.returncode == 2 and "no recipe named 'nope'; available: " in r.stderr and "distill_int8" in r.stderr
    r = cli("targets", "show", "tpu")
    assert r.returncode == 2 and "no target named 'tpu'" in r.stderr


def test_recipes_list_and_show(cli):
    r = cli("recipes", "list")
    assert r.returncode == 0 and "distill_int8" in r.stdout and "ptq_int8" in r.stdout
    r = cli("recipes", "show", "distill_int8")
    assert r.returncode == 0 and "max_nme_increase: 0.01" in r.stdout
    assert "max_float_layers: 20" in r.stdout and "per_channel: true" in r.stdout  # defaults are filled in


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("precision: [int8, fp16]", "precision: [int4]", ":6: precision[0]: Input should be 'fp32', 'fp16' or 'int8'"),
        ("channel_multiple: 16", "channel_multiple: 0", ":11: channel_multiple: Input should be greater than or equal"),
        ("build: on-device ", "bulid: on-device ", ":7: bulid: unknown key"),
    ],
)
def test_bad_targets_name_file_line_and_key(tmp_path, cli, old, new, expected):
    text = (ROOT / "targets" / "jetson.yaml").read_text()
    assert old in text
    (tmp_path / "t.yaml").write_text(text.replace(old, new))
    r = cli("targets", "show", str(tmp_path / "t.yaml"))
    assert r.returncode == 2 and expected in r.stderr, r.stderr
