# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The client package's modules as the controller sees them (the lookups package_files and package_archive)."""

from __future__ import annotations

import os

from ansible.errors import AnsibleLookupError


def package_modules(root):
    """Every ``*.py`` below ``root`` (at any depth, not in __pycache__ nor through a link), relative, sorted."""
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if name != "__pycache__")
        relative = os.path.relpath(folder, root)
        for name in sorted(files):
            if name.endswith(".py"):
                path = name if relative == "." else os.path.join(relative, name)
                found.append(path.replace(os.sep, "/"))
    return sorted(found)


def package_folders(loader, terms, plugin):
    """The folders ``terms`` names, each a path on the controller (relative to the playbook's folder), checked."""
    for term in terms:
        root = loader.path_dwim(str(term))
        if not os.path.isdir(root):
            raise AnsibleLookupError(f"{plugin}: {root} is not a folder")
        yield root
