#!/usr/bin/env bash
# ansible-test sanity, offline-safe, with no ignore files, from an
# ansible_collections/portmap/natpmp tree of its own (scripts/lib-ansible-test.sh).
# VENV: the virtualenv whose ansible-test runs (default .venv); SANITY_PYTHON: the Python
# version it runs the tests with (default 3.11); arguments go to ansible-test sanity.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
VENV=${VENV:-$REPO/.venv}
SANITY_PYTHON=${SANITY_PYTHON:-3.11}
source "$REPO/scripts/lib-ansible-test.sh"

if compgen -G "tests/sanity/ignore-*.txt" > /dev/null; then
    echo "sanity: ignore files are not allowed: $(ls tests/sanity/ignore-*.txt)" >&2
    exit 1
fi
python=$(find_python "$SANITY_PYTHON") || { echo "sanity: python$SANITY_PYTHON not found" >&2; exit 1; }

minor=$("$VENV/bin/python" -c "import ansible.release; print(ansible.release.__version__.rsplit('.', 1)[0])")
DEST=$(collection_tree "$REPO" "sanity-$minor-python$SANITY_PYTHON")
offline_get_pip "$REPO" "$VENV"

cd "$DEST"
PATH="$VENV/bin:$(dirname "$python"):$PATH" ansible-test sanity --venv --python "$SANITY_PYTHON" --color no "$@"
