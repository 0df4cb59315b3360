"""execution-environment.yml: `ansible-builder create` (through scripts/ee.sh, as `make ee`)
writes a build context whose galaxy step installs this collection from its tarball. No image
is built; the galaxy step is run here as the image runs it, from the context's _build/."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.skipif(not (BIN / "ansible-builder").exists(), reason="ansible-builder is not installed")


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    out = tmp_path_factory.mktemp("ee")
    subprocess.run([str(REPO / "scripts" / "ee.sh"), str(out)], check=True, capture_output=True,
                   env=dict(os.environ, VENV=str(BIN.parent)))
    return out / "context"


def test_the_containerfile_installs_the_pinned_ansible_core_and_the_collection(context):
    containerfile = (context / "Containerfile").read_text(encoding="utf-8")
    definition = yaml.safe_load((REPO / "execution-environment.yml").read_text(encoding="utf-8"))
    assert definition["version"] == 3
    assert f'ARG EE_BASE_IMAGE="{definition["images"]["base_image"]["name"]}"' in containerfile
    newest = sorted((REPO / "scripts" / "matrix").glob("ansible-core-*.txt"),
                    key=lambda path: [int(part) for part in path.stem.split("-")[-1].split(".")])[-1]
    pin = next(line for line in newest.read_text(encoding="utf-8").splitlines() if line.startswith("ansible-core=="))
    assert definition["dependencies"]["ansible_core"]["package_pip"] == pin  # the newest ansible-core make matrix runs
    assert pin in containerfile
    assert "ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml" in containerfile


def test_the_galaxy_step_installs_this_collection(context, tmp_path):
    build = context / "_build"
    env = dict(os.environ, ANSIBLE_HOME=str(tmp_path / "home"), ANSIBLE_NOCOLOR="1")
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "-r", "requirements.yml",
                    "-p", str(tmp_path / "collections")], cwd=str(build), check=True, capture_output=True, env=env)
    root = tmp_path / "collections" / "ansible_collections" / "portmap" / "natpmp"
    info = json.loads((root / "MANIFEST.json").read_text(encoding="utf-8"))["collection_info"]
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text(encoding="utf-8"))
    assert (info["namespace"], info["name"], info["version"]) == ("portmap", "natpmp", galaxy["version"])
    assert (root / "plugins" / "modules" / "natpmp_mapping.py").is_file()
    assert (root / "roles" / "renewal" / "meta" / "argument_specs.yml").is_file()
