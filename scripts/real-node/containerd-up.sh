#!/usr/bin/env bash
# Starts a private containerd (its own root, state, socket and CNI config under $RUN).
# CONTAINERD=/usr/bin/containerd (Debian 1.6.20, config conf/containerd-1.6.toml) or a 2.x build dir:
#   CONTAINERD_DIR=~/.cache/rbs-proto/containerd-v2.4.2 (config conf/containerd-2.toml; its shim first in PATH)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RUN=${RUN:-$HERE/run}
mkdir -p "$RUN"/{logs,pids,containerd,cni/net.d,cni/ipam}
if [ -n "${CONTAINERD_DIR:-}" ]; then
  BIN=$CONTAINERD_DIR/containerd; CONF=$HERE/conf/containerd-2.toml; export PATH=$CONTAINERD_DIR:$PATH
else
  BIN=/usr/bin/containerd; CONF=$HERE/conf/containerd-1.6.toml
fi
sed -e "s|@RUN@|$RUN|g" -e "s|@RUNC@|${RUNC:-/usr/sbin/runc}|" "$CONF" > "$RUN/containerd/config.toml"
sed "s|@RUN@|$RUN|g" "$HERE/conf/10-rbs.conflist" > "$RUN/cni/net.d/10-rbs.conflist"
# The CNI bridge plugin (isGateway) turns on net.ipv4.ip_forward; pods must reach nothing but this host, so
# remember the value for down.sh and drop anything routed into or out of the pod bridge.
[ -f "$RUN/ip_forward.orig" ] || cat /proc/sys/net/ipv4/ip_forward > "$RUN/ip_forward.orig"
for dir in "-i rbs0 ! -o rbs0" "-o rbs0 ! -i rbs0"; do
  # shellcheck disable=SC2086
  iptables -w -C FORWARD $dir -m comment --comment rbs-realnode -j DROP 2>/dev/null ||
    iptables -w -I FORWARD $dir -m comment --comment rbs-realnode -j DROP
done
setsid "$BIN" --config "$RUN/containerd/config.toml" > "$RUN/logs/containerd.log" 2>&1 < /dev/null &
echo $! > "$RUN/pids/containerd"
for _ in $(seq 100); do [ -S "$RUN/containerd/containerd.sock" ] && break; sleep 0.1; done
"$BIN" --version
