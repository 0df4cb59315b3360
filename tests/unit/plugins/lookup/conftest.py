"""The lookups import the collection's plugin_utils as ``ansible_collections.portmap.natpmp...``: where this
checkout is not already importable so (ansible-test units makes it so; plain pytest from the checkout does not),
a collections tree of the session's own whose portmap.natpmp is this checkout is put first on the path."""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import sys
import tempfile

import pytest
from ansible.parsing.dataloader import DataLoader

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), *[os.pardir] * 4))
PLUGIN_UTILS = "ansible_collections.portmap.natpmp.plugins.plugin_utils.package_tree"


@pytest.fixture(scope="session", autouse=True)
def collection_importable():
    try:
        importlib.import_module(PLUGIN_UTILS)
        yield
        return
    except ImportError:
        pass
    root = tempfile.mkdtemp(prefix="portmap-collections-")
    os.makedirs(os.path.join(root, "ansible_collections", "portmap"))
    os.symlink(REPO, os.path.join(root, "ansible_collections", "portmap", "natpmp"))
    sys.path.insert(0, root)
    for name in [name for name in sys.modules if name == "ansible_collections" or name.startswith("ansible_collections.")]:
        del sys.modules[name]
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.path.remove(root)
        shutil.rmtree(root)


@pytest.fixture
def load_lookup():
    """A function giving the lookup plugins/lookup/NAME.py of this checkout, ready to run."""
    return _load


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_lookup", os.path.join(REPO, "plugins", "lookup", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.LookupModule(loader=DataLoader())
