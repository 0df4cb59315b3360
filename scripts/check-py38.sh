#!/usr/bin/env bash
# Code that runs on managed hosts (modules and module_utils) must run on Python 3.8+.
# Two independent checks: vermin's minimum-version analysis, and CPython's own parser
# with the 3.8 grammar.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
TARGETS=(plugins/modules plugins/module_utils)

"$VENV/bin/vermin" --target=3.8- --no-tips --violations --eval-annotations --no-parse-comments "${TARGETS[@]}"

"$VENV/bin/python" - "${TARGETS[@]}" <<'PY'
import ast
import pathlib
import sys

files = sorted(p for target in sys.argv[1:] for p in pathlib.Path(target).rglob("*.py"))
bad = 0
for path in files:
    try:
        ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=(3, 8))
    except SyntaxError as exc:
        bad += 1
        print(f"{path}:{exc.lineno}: not Python 3.8: {exc.msg}")
print(f"py38: {len(files)} files parsed with the Python 3.8 grammar, {bad} failed")
sys.exit(1 if bad else 0)
PY
