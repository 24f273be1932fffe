#!/usr/bin/env bash
# Builds the project's agent image (Dockerfile target `agent`) without Docker: buildah bud, chroot isolation,
# host network (for apt and npm), FROM the locally assembled NODE_IMAGE (make-node-base.sh), never pulling.
# The context is a `git archive` of /work/main's HEAD (the repo itself is not written to).
# Then saves it as a docker-archive and (if SOCK is given) imports it into that containerd.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); B=$HERE/../buildah.sh
REPO=${REPO:-/work/main}; TAG=${TAG:-localhost/rbs/agent:slim}
"$HERE/make-node-base.sh" >/dev/null
ctx=$(mktemp -d /tmp/rbs-ctx-XXXXXX); trap 'rm -rf "$ctx"' EXIT
git -C "$REPO" archive HEAD | tar -x -C "$ctx"
s=$(date +%s)
nice -n 19 ionice -c3 "$B" bud --isolation chroot --network host --pull=never --layers=false \
  --build-arg NODE_IMAGE="docker.io/library/node:$(node --version | sed 's/^v//')-bookworm-slim" \
  --target agent -t "$TAG" "$ctx"
echo "built $TAG in $(( $(date +%s) - s ))s"
out=${OUT:-$HOME/.cache/rbs-proto/agent.tar}; rm -f "$out"
s=$(date +%s); "$B" push -q "$TAG" "docker-archive:$out:$TAG"; echo "saved $out ($(du -h "$out" | cut -f1)) in $(( $(date +%s) - s ))s"
if [ -n "${SOCK:-}" ]; then s=$(date +%s); ${CTR:-ctr} -a "$SOCK" -n k8s.io images import "$out"; echo "imported in $(( $(date +%s) - s ))s"; fi
