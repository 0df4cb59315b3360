#!/usr/bin/env bash
# ansible-test sanity, offline-safe, with no ignore files. It runs from a temporary tree
# ending in ansible_collections/portmap/natpmp, filled from the files git knows (tracked,
# and new files not ignored), so no virtualenv or test output is scanned.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
VENV=${VENV:-$REPO/.venv}

if compgen -G "tests/sanity/ignore-*.txt" > /dev/null; then
    echo "sanity: ignore files are not allowed: $(ls tests/sanity/ignore-*.txt)" >&2
    exit 1
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
DEST="$WORK/ansible_collections/portmap/natpmp"
mkdir -p "$DEST"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' file; do
    [ -e "$file" ] || continue
    mkdir -p "$DEST/$(dirname "$file")"
    cp -p "$file" "$DEST/$file"
done
# ansible-test decides what to scan with git when it finds a repository.
git -C "$DEST" init -q
git -C "$DEST" add -A
git -C "$DEST" -c user.name=sanity -c user.email=sanity@localhost commit -q -m sanity

# ansible-test downloads pip's bootstrap script; give it ours (ensurepip + pip install).
CACHE="$HOME/.ansible/test/cache"
mkdir -p "$CACHE"
PIP_VERSION=$("$VENV/bin/python" -c '
from ansible_test._internal.python_requirements import get_venv_packages
class Python:
    version = "3.11"
print(get_venv_packages(Python())["pip"])')
install -m 0644 "$REPO/scripts/get_pip_offline.py" "$CACHE/get_pip_${PIP_VERSION//./_}.py"

cd "$DEST"
PATH="$VENV/bin:$PATH" ansible-test sanity --venv --python 3.11 --color no "$@"
