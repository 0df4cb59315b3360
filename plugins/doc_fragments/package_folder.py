# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """What the lookups over a package folder on the controller (package_files, package_archive) share."""

    DOCUMENTATION = r"""
author:
  - portmap.natpmp maintainers (@portmap)
options:
  _terms:
    description: The package folders, on the controller (a relative path is taken from the playbook's folder).
    type: list
    elements: path
    required: true
"""
