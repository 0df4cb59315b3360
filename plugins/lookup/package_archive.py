# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: package_archive
short_description: A tar archive of the Python modules of a package folder on the controller, at any depth
version_added: 0.2.0
description:
  - Writes an uncompressed tar archive of every C(*.py) file in the folder given and in every folder below it (the
    files P(portmap.natpmp.package_files#lookup) lists), and returns its path on the controller.
  - The archive is the same for the same files, whatever the controller and the checkout; every member is a regular
    file owned by root (uid and gid 0), mode C(0644), with one fixed modification time (1 January 2000), so that
    C(ansible.builtin.unarchive) changes a host only where a file is missing or differs in its content, owner or mode.
    Byte code compiled from such files is best validated by the source's hash (C(compileall --invalidation-mode
    checked-hash)), not by its time.
  - The archive goes in Ansible's temporary folder on the controller, which is removed when the run ends.
  - The P(portmap.natpmp.renewal#role) role uses it to install the collection's client package with its
    subpackages in one module run per host.
extends_documentation_fragment:
  - portmap.natpmp.package_folder
"""

EXAMPLES = r"""
- name: Install a package folder's modules on the host, in one run
  ansible.builtin.unarchive:
    src: "{{ lookup('portmap.natpmp.package_archive', '/path/to/plugins/module_utils/portmap') }}"
    dest: /usr/local/lib/portmap-natpmp/portmap
"""

RETURN = r"""
_raw:
  description: The path of the archive on the controller, one for each folder given.
  type: list
  elements: path
"""

import hashlib
import io
import os
import tarfile

from ansible import constants as C
from ansible.plugins.lookup import LookupBase

from ansible_collections.portmap.natpmp.plugins.plugin_utils.package_tree import package_folders, package_modules

MTIME = 946684800  # 2000-01-01T00:00:00Z


def archive_bytes(root):
    """The archive of the modules below ``root``, as bytes: members sorted, each root's 0644 at MTIME."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for relative in package_modules(root):
            with open(os.path.join(root, *relative.split("/")), "rb") as source:
                data = source.read()
            member = tarfile.TarInfo(relative)
            member.size = len(data)
            member.mode = 0o644
            member.mtime = MTIME
            member.uid = member.gid = 0
            member.uname = member.gname = "root"
            archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        paths = []
        for root in package_folders(self._loader, terms, "package_archive"):
            data = archive_bytes(root)
            # Named by its content: hosts (forks) asking for the same archive share one file, written whole.
            path = os.path.join(C.DEFAULT_LOCAL_TMP, f"portmap-package-{hashlib.sha256(data).hexdigest()[:16]}.tar")
            if not os.path.exists(path):
                partial = f"{path}.{os.getpid()}"
                with open(partial, "wb") as out:
                    out.write(data)
                os.replace(partial, path)
            paths.append(path)
        return paths
