#!/usr/bin/env bash
# ansible-doc must render every module, filter, lookup and role of the collection with no warning, and
# antsibull-docs must find the collection's docs (plugins, roles, docs/docsite) clean.
set -euo pipefail
cd "$(dirname "$0")/.." || exit 1
REPO=$(pwd)
VENV=${VENV:-$REPO/.venv}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/ansible_collections/portmap"
ln -s "$REPO" "$WORK/ansible_collections/portmap/natpmp"
export ANSIBLE_COLLECTIONS_PATH="$WORK" ANSIBLE_NOCOLOR=1 ANSIBLE_HOME="$WORK/home"

checked=0
failed=0
check() {
    local type=$1 name=$2 out
    if ! out=$("$VENV/bin/ansible-doc" -t "$type" "$name" 2>&1); then
        echo "ansible-doc -t $type $name failed:"; echo "$out"; failed=$((failed + 1)); return
    fi
    if grep -qE '^\[?(WARNING|ERROR|DEPRECATION)' <<<"$out"; then
        echo "ansible-doc -t $type $name warns:"; grep -E '^\[?(WARNING|ERROR|DEPRECATION)' <<<"$out"
        failed=$((failed + 1)); return
    fi
    checked=$((checked + 1))
}
for path in plugins/modules/*.py; do
    name=$(basename "$path" .py)
    [ "$name" = "__init__" ] || check module "portmap.natpmp.$name"
done
for path in plugins/filter/*.py; do
    name=$(basename "$path" .py)
    [ "$name" = "__init__" ] || check filter "portmap.natpmp.$name"
done
for path in plugins/lookup/*.py; do
    name=$(basename "$path" .py)
    [ "$name" = "__init__" ] || check lookup "portmap.natpmp.$name"
done
for path in roles/*/; do
    [ -d "$path" ] || continue
    check role "portmap.natpmp.$(basename "$path")"
done
echo "ansible-doc: $checked rendered cleanly, $failed failed"
if (cd "$WORK/ansible_collections/portmap/natpmp" && PATH="$VENV/bin:$PATH" antsibull-docs lint-collection-docs --plugin-docs .); then
    echo "antsibull-docs lint-collection-docs --plugin-docs: clean"
else
    echo "antsibull-docs lint-collection-docs --plugin-docs: FAILED"
    failed=$((failed + 1))
fi
[ "$failed" -eq 0 ]
