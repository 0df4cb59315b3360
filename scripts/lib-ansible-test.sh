# shellcheck shell=bash
# Sourced by the scripts that run ansible-test (sanity.sh, pythons.sh, matrix.sh).
# ansible-test runs from a path ending in ansible_collections/portmap/natpmp and decides what
# to scan with git, so it gets a tree of its own under $PORTMAP_CACHE/ansible-test/ (default
# ~/.cache/portmap-natpmp: outside the checkout, so a fresh clone on the same machine, as CI
# makes, reuses what an earlier run built), filled from the
# files git knows (tracked, and new files not ignored): no virtualenv or test output is
# scanned. The tree's tests/output/ is kept between runs: the virtualenvs ansible-test makes
# there are reused. It downloads pip's bootstrap script before it creates a virtualenv; its
# cache gets ours (ensurepip + pip install) instead.

PORTMAP_CACHE=${PORTMAP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/portmap-natpmp}

# collection_tree REPO NAME: refresh $PORTMAP_CACHE/ansible-test/NAME/ansible_collections/portmap/natpmp
# from REPO's files (all but its tests/output/), echo that path.
collection_tree() {
    local repo=$1 dest="$PORTMAP_CACHE/ansible-test/$2/ansible_collections/portmap/natpmp" file
    mkdir -p "$dest/tests"
    find "$dest" -mindepth 1 -maxdepth 1 ! -name tests -exec rm -rf {} +
    find "$dest/tests" -mindepth 1 -maxdepth 1 ! -name output -exec rm -rf {} +
    (cd "$repo" && git ls-files -z --cached --others --exclude-standard) | while IFS= read -r -d '' file; do
        [ -e "$repo/$file" ] || continue
        mkdir -p "$dest/$(dirname "$file")"
        cp -p "$repo/$file" "$dest/$file"
    done
    git -C "$dest" init -q
    git -C "$dest" add -A
    git -C "$dest" -c user.name=ansible-test -c user.email=ansible-test@localhost commit -q -m tree
    echo "$dest"
}

# offline_get_pip REPO VENV: our get_pip script under every name VENV's ansible-test asks for.
offline_get_pip() {
    local repo=$1 venv=$2 cache="$HOME/.ansible/test/cache" version
    mkdir -p "$cache"
    for version in $("$venv/bin/python" -c '
from ansible_test._internal.constants import SUPPORTED_PYTHON_VERSIONS
from ansible_test._internal.python_requirements import get_venv_packages
class Python:
    pass
found = set()
for Python.version in SUPPORTED_PYTHON_VERSIONS:
    found.add(get_venv_packages(Python())["pip"])
print(" ".join(sorted(found)))'); do
        install -m 0644 "$repo/scripts/get_pip_offline.py" "$cache/get_pip_${version//./_}.py"
    done
}

# find_python X.Y: the path of CPython X.Y (on PATH, else under pyenv), or nothing.
find_python() {
    local version=$1 candidate
    for candidate in "/usr/bin/python$version" "$(PATH=${PATH//$HOME\/.pyenv\/shims:/} command -v "python$version")" \
            "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".*/bin/"python$version"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" -c 'import venv, ensurepip' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}
