"""The lookup portmap.natpmp.package_files: a package's modules at any depth, relative to it."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleLookupError


@pytest.fixture
def lookup(load_lookup):
    return load_lookup("package_files")


def test_every_module_at_any_depth(lookup, tmp_path):
    for name in ("cli.py", "__init__.py", "methods/__init__.py", "methods/pcp.py", "a/b/c.py", "notes.txt",
                 "__pycache__/cli.py", "methods/__pycache__/pcp.cpython-311.pyc"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    (tmp_path / "empty").mkdir()
    assert lookup.run([str(tmp_path)]) == ["__init__.py", "a/b/c.py", "cli.py", "methods/__init__.py",
                                           "methods/pcp.py"]


def test_a_missing_folder_is_an_error(lookup, tmp_path):
    with pytest.raises(AnsibleLookupError, match="is not a folder"):
        lookup.run([str(tmp_path / "nowhere")])
