# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: closest
short_description: The known name closest to a misspelt one
version_added: 0.2.0
description:
  - Returns the element of O(known) most like O(_input), or an empty string when none is close
    (a similarity ratio under O(cutoff)).
  - The P(portmap.natpmp.renewal#role) role uses it to name the variable a typo was meant to be.
author:
  - portmap.natpmp maintainers (@portmap)
options:
  _input:
    description: The name to match.
    type: str
    required: true
  known:
    description: The names it may have meant.
    type: list
    elements: str
    required: true
  cutoff:
    description: The least similarity (from 0 to 1) that counts as close.
    type: float
    default: 0.6
"""

EXAMPLES = r"""
- name: Name the variable a typo was meant to be
  ansible.builtin.debug:
    msg: "did you mean {{ 'renewal_mapings' | portmap.natpmp.closest(['renewal_mappings', 'renewal_state']) }}?"
"""

RETURN = r"""
_value:
  description: The closest known name, or an empty string.
  type: str
"""

import difflib

from ansible.errors import AnsibleFilterError


def closest(name, known, cutoff=0.6):
    if not isinstance(name, str) or not isinstance(known, (list, tuple)):
        raise AnsibleFilterError("closest expects a name and a list of known names")
    matches = difflib.get_close_matches(name, [str(k) for k in known], n=1, cutoff=float(cutoff))
    return matches[0] if matches else ""


class FilterModule:
    def filters(self):
        return {"closest": closest}
