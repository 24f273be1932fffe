#!/usr/bin/env bash
# Builds the pause image and the test workload image with buildah (storage under ~/.cache/rbs-proto/buildah), saves them as
# docker-archive tarballs and imports them into the private containerd's k8s.io namespace.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); RUN=${RUN:-$HERE/run}; B=$HERE/buildah.sh
CTR=${CTR:-ctr}; SOCK=$RUN/containerd/containerd.sock
mkdir -p "$RUN/images"
# pause: the static Go pause (pause/main.go), as 65535 like registry.k8s.io/pause
c=$($B from scratch); $B copy "$c" "$HOME/.cache/rbs-proto/pause" /pause >/dev/null
$B config --entrypoint '["/pause"]' --user 65535:65535 "$c"; $B commit -q "$c" localhost/rbs/pause:1 >/dev/null; $B rm "$c" >/dev/null
# workload: static gRPC health server, non-root numeric user (runAsNonRoot needs a numeric UID to check)
c=$($B from scratch); $B copy "$c" "$HOME/.cache/rbs-proto/grpc-health" /grpc-health >/dev/null
$B config --entrypoint '["/grpc-health"]' --user 65532:65532 --port 8080 "$c"; $B commit -q "$c" localhost/rbs/grpc-health:1 >/dev/null; $B rm "$c" >/dev/null
for img in pause grpc-health; do
  rm -f "$RUN/images/$img.tar"
  $B push -q "localhost/rbs/$img:1" "docker-archive:$RUN/images/$img.tar:localhost/rbs/$img:1"
  $CTR -a "$SOCK" -n k8s.io images import "$RUN/images/$img.tar"
done
$CTR -a "$SOCK" -n k8s.io images ls -q
