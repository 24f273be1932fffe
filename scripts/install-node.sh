#!/usr/bin/env bash
# Installs what the test control plane's real node needs (test/harness/kube-node.ts), without Docker:
#   - Debian's containerd 1.6, runc, CNI plugins, buildah and debootstrap (apt);
#   - the kubelet (scripts/install-kube.sh builds it, the apiserver's version);
#   - three images in buildah's storage under $RBS_CACHE/node, each saved as a docker-archive for containerd:
#     the pause image (a static Go binary), the Dockerfile's NODE_IMAGE (debootstrap'd bookworm plus this
#     machine's Node 20, since no registry is reachable) and the project's agent image (`--target agent`).
# The agent image is rebuilt when its sources change: buildah keeps the Dockerfile's layers, so only the
# build stage and the last layer are redone. Needs root (namespaces, overlayfs, the node's network).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${RBS_CACHE:-$HOME/.cache/rbs}
NODE_CACHE=$CACHE/node
say() { echo "install-node: $*" >&2; }

# shellcheck source=lib.sh
source scripts/lib.sh

[ "$(id -u)" = 0 ] || { say "the real node needs root (containerd, runc and the kubelet); run npm test as root"; exit 1; }

packages=()
command -v containerd >/dev/null || packages+=(containerd)
command -v runc >/dev/null || packages+=(runc)
[ -x /usr/lib/cni/bridge ] || packages+=(containernetworking-plugins)
command -v buildah >/dev/null || packages+=(buildah)
command -v debootstrap >/dev/null || packages+=(debootstrap)
if [ ${#packages[@]} -gt 0 ]; then
  say "installing Debian packages: ${packages[*]}"
  apt_install "${packages[@]}"
fi

mkdir -p "$NODE_CACHE"
# One build at a time per cache: two trees (a CI clone, a developer's) share the images' tags and archives.
exec 9>"$NODE_CACHE/.lock"
flock 9
b() { buildah --root "$NODE_CACHE/buildah" --runroot "$NODE_CACHE/buildah-run" --storage-driver overlay "$@"; }
has_image() { b inspect --type image "$1" >/dev/null 2>&1; }
# save <image> <file>: the image as a docker-archive (replaced in one rename), unless the file holds this very image.
save() {
  local id
  id=$(b inspect --type image --format '{{.FromImageID}}' "$1")
  [ "$(cat "$2.id" 2>/dev/null)" = "$id" ] && [ -f "$2" ] && return
  rm -f "$2.tmp" "$2.id"
  b push -q "$1" "docker-archive:$2.tmp:$1"
  mv "$2.tmp" "$2"
  echo "$id" > "$2.id"
}
# fresh <name> <inputs hash>: true when the image <name> was built from these inputs (recorded in <name>.inputs).
fresh() { [ "$(cat "$NODE_CACHE/$1.inputs" 2>/dev/null)" = "$2" ]; }
hash_files() { find "$@" -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1; }

# --- pause: the sandbox image (registry.k8s.io/pause cannot be pulled here) ----------------------------------
PAUSE_IMAGE=localhost/rbs/pause:1
pause_inputs=$(hash_files scripts/node-images/pause)
if ! has_image "$PAUSE_IMAGE" || ! fresh pause "$pause_inputs"; then
  say "building $PAUSE_IMAGE"
  tmp=$(mktemp -d)
  (cd scripts/node-images/pause && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$tmp/pause" .)
  c=$(b from scratch)
  b copy "$c" "$tmp/pause" /pause >/dev/null
  b config --entrypoint '["/pause"]' "$c"
  b commit -q "$c" "$PAUSE_IMAGE" >/dev/null
  b rm "$c" >/dev/null
  rm -rf "$tmp"
  echo "$pause_inputs" > "$NODE_CACHE/pause.inputs"
fi
save "$PAUSE_IMAGE" "$NODE_CACHE/pause.tar"

# --- NODE_IMAGE: bookworm plus this machine's Node ----------------------------------------------------------
node_version=$(node --version)
node_version=${node_version#v}
NODE_IMAGE=docker.io/library/node:$node_version-bookworm-slim
base_inputs=$(hash_files scripts/node-images/node-slim.sh /usr/local/share/ca-certificates /usr/bin/node)
if ! has_image "$NODE_IMAGE" || ! fresh node-base "$base_inputs"; then
  rootfs=$NODE_CACHE/bookworm-minbase
  if [ ! -x "$rootfs/bin/sh" ]; then
    say "debootstrap of Debian bookworm (minbase), once"
    rm -rf "$rootfs.tmp" "$rootfs"
    debootstrap --variant=minbase bookworm "$rootfs.tmp" http://deb.debian.org/debian >/dev/null
    mv -T "$rootfs.tmp" "$rootfs"
  fi
  say "assembling $NODE_IMAGE"
  c=$(b from scratch)
  mnt=$(b mount "$c")
  cp -a "$rootfs"/. "$mnt"/
  bash scripts/node-images/node-slim.sh "$mnt"
  b umount "$c" >/dev/null
  b config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env NODE_VERSION="$node_version" \
    --env npm_config_nodedir=/usr --cmd '["node"]' "$c"
  b commit -q "$c" "$NODE_IMAGE" >/dev/null
  b rm "$c" >/dev/null
  echo "$base_inputs" > "$NODE_CACHE/node-base.inputs"
fi

# --- the agent image: the project's Dockerfile ---------------------------------------------------------------
AGENT_IMAGE=localhost/rbs/agent:test
# What the image is built from: the Dockerfile, its base and the context .dockerignore lets in. Unchanged, even
# asking buildah (which re-reads the context and every cached step) is skipped.
allowed=$(sed -n 's/^!//p' .dockerignore)
# shellcheck disable=SC2086
inputs=$(echo "$NODE_IMAGE $(b inspect --type image --format '{{.FromImageID}}' "$NODE_IMAGE") \
  $(hash_files scripts/install-node.sh Dockerfile .dockerignore $allowed)" | sha256sum | cut -d' ' -f1)
if ! fresh agent "$inputs" || ! has_image "$AGENT_IMAGE" || [ ! -f "$NODE_CACHE/agent.tar" ]; then
  start=$(date +%s)
  b bud --quiet --layers --isolation chroot --network host --pull=never --build-arg NODE_IMAGE="$NODE_IMAGE" \
    --target agent -t "$AGENT_IMAGE" . >/dev/null
  save "$AGENT_IMAGE" "$NODE_CACHE/agent.tar"
  echo "$inputs" > "$NODE_CACHE/agent.inputs"
  say "agent image built in $(($(date +%s) - start))s"
fi
# Each source change leaves the previous build's layers behind; past a bound, they go (and with them the cached
# build steps, which the next build redoes: a few minutes).
if [ "$(du -sm "$NODE_CACHE/buildah" | cut -f1)" -gt 20000 ]; then
  say "pruning images no tag uses"
  b rmi --prune >/dev/null
fi
