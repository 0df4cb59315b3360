# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: package_files
short_description: The Python modules of a package folder on the controller, at any depth
version_added: 0.2.0
description:
  - Returns the path, relative to the folder, of every C(*.py) file in each folder given and in every folder
    below it (subpackages, and folders holding only subpackages), sorted. C(__pycache__) folders are skipped,
    and so are folders reached through a symbolic link.
  - The P(portmap.natpmp.renewal#role) role uses it to install the collection's client package with its
    subpackages, keeping their folders.
extends_documentation_fragment:
  - portmap.natpmp.package_folder
"""

EXAMPLES = r"""
- name: Show the client package's modules
  ansible.builtin.debug:
    msg: "{{ query('portmap.natpmp.package_files', '/path/to/plugins/module_utils/portmap') }}"
"""

RETURN = r"""
_raw:
  description: The modules' paths relative to the folder, with C(/) between folders (C(cli.py), C(methods/pcp.py)).
  type: list
  elements: str
"""

from ansible.plugins.lookup import LookupBase

from ansible_collections.portmap.natpmp.plugins.plugin_utils.package_tree import package_folders, package_modules


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        found = []
        for root in package_folders(self._loader, terms, "package_files"):
            found.extend(package_modules(root))
        return sorted(found)
