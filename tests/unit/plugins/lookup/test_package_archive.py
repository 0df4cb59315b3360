"""The lookup portmap.natpmp.package_archive: the package's modules at any depth in one tar archive that is the
same for the same files (members root's 0644 at one fixed time), written in Ansible's temporary folder."""

from __future__ import annotations

import os
import tarfile
import time

import pytest
from ansible import constants as C
from ansible.errors import AnsibleLookupError


@pytest.fixture
def lookup(load_lookup):
    return load_lookup("package_archive")


def package(root, files):
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_modules_at_any_depth_root_s_0644_at_one_time(lookup, tmp_path):
    root = package(tmp_path / "pkg", {"cli.py": "print('cli')\n", "methods/__init__.py": "", "a/b/c.py": "C = 1\n",
                                      "notes.txt": "not a module", "__pycache__/cli.py": "stale"})
    (path,) = lookup.run([str(root)])
    assert os.path.dirname(path) == C.DEFAULT_LOCAL_TMP
    with tarfile.open(path) as archive:
        members = archive.getmembers()
        assert [member.name for member in members] == ["a/b/c.py", "cli.py", "methods/__init__.py"]
        assert {(member.type, member.mode, member.uid, member.gid, member.uname, member.gname, member.mtime)
                for member in members} == {(tarfile.REGTYPE, 0o644, 0, 0, "root", "root", 946684800)}
        assert archive.extractfile("cli.py").read() == b"print('cli')\n"


def test_the_same_files_make_the_same_archive_and_another_file_another(lookup, tmp_path):
    first = package(tmp_path / "one", {"cli.py": "x = 1\n", "methods/pcp.py": "y = 2\n"})
    (a,) = lookup.run([str(first)])
    with open(a, "rb") as made:
        before = made.read()
    time.sleep(0.01)
    second = package(tmp_path / "two", {"methods/pcp.py": "y = 2\n", "cli.py": "x = 1\n"})  # later, elsewhere
    os.chmod(second / "cli.py", 0o600)
    (b,) = lookup.run([str(second)])
    assert a == b
    with open(b, "rb") as made:
        assert made.read() == before
    (second / "cli.py").write_text("x = 3\n")
    (c,) = lookup.run([str(second)])
    assert c != a


def test_a_missing_folder_is_an_error(lookup, tmp_path):
    with pytest.raises(AnsibleLookupError, match="is not a folder"):
        lookup.run([str(tmp_path / "nowhere")])
