"""The lock file pins every dependency, and the environment the tests run in is the locked one."""

import re
import sys
from importlib import metadata

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from conftest import ROOT


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].lower().replace("_", "-")


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"requirements.lock: {line!r} is not pinned with =="
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_every_declared_dependency_is_pinned():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name(r) for r in project["dependencies"]}
    for extra in ("tflite", "dev"):
        declared |= {_name(r) for r in project["optional-dependencies"][extra]}
    missing = sorted(declared - set(_lock()))
    assert not missing, f"requirements.lock does not pin {missing}"


def test_the_test_environment_matches_the_lock():
    off = {}
    for name, version in _lock().items():
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # platform-specific pins (e.g. a package only some OSes need)
        if have.split("+")[0] != version:
            off[name] = (version, have)
    assert not off, f"installed versions differ from requirements.lock: {off}"


def test_the_makefile_installs_from_the_lock():
    make = (ROOT / "Makefile").read_text()
    assert "CONSTRAINTS ?= requirements.lock" in make and "-c $(CONSTRAINTS)" in make
