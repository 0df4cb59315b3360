#!/usr/bin/env bash
# `make ee`: the execution environment's build context (no image is built here): the
# collection's tarball, then `ansible-builder create` on execution-environment.yml.
# OUT (first argument, default build/ee) gets the definition, the tarball and context/.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
VENV=${VENV:-$REPO/.venv}
OUT=$(realpath -m "${1:-build/ee}")

rm -rf "$OUT"
mkdir -p "$OUT/build"
ANSIBLE_HOME="$OUT/ansible-home" "$VENV/bin/ansible-galaxy" collection build "$REPO" --output-path "$OUT/build" > /dev/null
mv "$OUT"/build/portmap-natpmp-*.tar.gz "$OUT/build/portmap-natpmp.tar.gz"
cp execution-environment.yml "$OUT/"
"$VENV/bin/ansible-builder" create --file "$OUT/execution-environment.yml" --context "$OUT/context" \
    --output-filename Containerfile
echo "ee: build context in $OUT/context; build the image with: podman build -t portmap-natpmp-ee $OUT/context"
