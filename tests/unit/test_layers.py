"""One place per protocol: code outside ``methods/`` does not compare or branch on a protocol's name.

A protocol is a ``Method`` (plugins/module_utils/portmap/methods/); the layers above it (the
client, detection, the ledger, reconcile, the modules, the renewal job, the watch, the command)
ask the method for its facts instead of testing which protocol it is.  So a fourth protocol is
one module under ``methods/``, one registry line and the user-facing choice lists.  Those lists
are assignments, which this test leaves alone; what it refuses, in every module outside
``methods/`` and the protocols' own wire formats (``wire_*.py``, ``transport_upnp.py``):

- a comparison with a protocol's name (``method == "upnp"``, ``kind in (PCP, NATPMP)``),
- a protocol's name in the test of an ``if``, ``while`` or conditional expression,
- a lookup by a protocol's name (``found["pcp"]``).

``PORTMAP_LAYERS_ROOT`` points the test at another checkout's ``plugins`` folder.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

ROOT = Path(os.environ.get("PORTMAP_LAYERS_ROOT") or Path(__file__).resolve().parents[2] / "plugins")
NAMES = {"pcp", "natpmp", "upnp", "nat-pmp"}
CONSTANTS = {"PCP", "NATPMP", "UPNP", "NAT_PMP"}
OWN = ("wire_", "transport_upnp")  # a protocol's own wire format and transport, below its method


def layered_files():
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if "methods" in relative.parts or path.name.startswith(OWN):
            continue
        found.append(path)
    return found


def names_protocol(node: ast.AST) -> bool:
    """Whether ``node`` is a protocol's name (a string, or a constant that holds one), or a tuple, list
    or set of them."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.lower() in NAMES
    if isinstance(node, ast.Name):
        return node.id in CONSTANTS
    if isinstance(node, ast.Attribute):
        return node.attr in CONSTANTS
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(names_protocol(element) for element in node.elts)
    return False


def offences(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(names_protocol(n) for n in [node.left] + node.comparators):
            found.append((node.lineno, "compares with a protocol's name"))
        elif isinstance(node, (ast.If, ast.While, ast.IfExp)) and \
                any(names_protocol(n) for n in ast.walk(node.test) if not isinstance(n, ast.Compare)):
            found.append((node.lineno, "branches on a protocol's name"))
        elif isinstance(node, ast.Subscript) and names_protocol(node.slice):
            found.append((node.lineno, "looks up by a protocol's name"))
    source = path.read_text(encoding="utf-8").splitlines()
    first = {}
    for line, why in found:
        first.setdefault(line, why)  # one offence a line (an ``if`` and the comparison in it are one)
    return [f"{path.relative_to(ROOT)}:{line}: {why}: {source[line - 1].strip()}" for line, why in sorted(first.items())]


def test_the_layers_are_found():
    files = {p.relative_to(ROOT).as_posix() for p in layered_files()}
    for layer in ("client.py", "detect.py", "manage.py", "renew.py", "watch.py", "reconcile.py", "epoch.py",
                  "announce.py", "cli.py", "ledger.py"):
        assert f"module_utils/portmap/{layer}" in files
    assert "module_utils/common.py" in files and "modules/natpmp_mapping.py" in files


def test_the_check_sees_each_kind_of_branch(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('if method == "upnp":\n    pass\nx = 1 if kind in (PCP, NATPMP) else 2\ny = found["pcp"]\n'
                      'z = {"method": "natpmp"}\nCHOICES = ("auto", "pcp", "natpmp", "upnp")\n', encoding="utf-8")
    global ROOT  # pylint: disable=global-statement
    saved, ROOT = ROOT, tmp_path
    try:
        lines = [line.split(":")[1] for line in offences(sample)]
    finally:
        ROOT = saved
    assert lines == ["1", "3", "4"]  # an assignment (a default, a choice list) is not a branch


@pytest.mark.parametrize("path", layered_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_layer_above_the_methods_branches_on_a_protocol(path):
    found = offences(path)
    assert not found, "\n".join(found)


def test_the_choice_lists_name_every_registered_method():
    import yaml  # pylint: disable=import-outside-toplevel

    from portmap import defaults  # pylint: disable=import-outside-toplevel
    from portmap.methods import registry as methods  # pylint: disable=import-outside-toplevel

    offered = ("auto",) + methods.NAMES
    assert defaults.METHODS == offered
    common = (ROOT / "module_utils" / "common.py").read_text(encoding="utf-8")
    assert f'"choices": {list(offered)!r}'.replace("'", '"') in common
    fragment = (ROOT / "doc_fragments" / "common.py").read_text(encoding="utf-8")
    assert f"choices: [{', '.join(offered)}]" in fragment
    spec = yaml.safe_load((ROOT.parent / "roles" / "renewal" / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))
    options = spec["argument_specs"]["main"]["options"]
    assert tuple(options["renewal_method"]["choices"]) == offered
    for name in methods.NAMES:  # each loads, and names itself as the registry does
        assert methods.load(name).name == name and methods.load(name).title == methods.TITLES[name]
