#!/usr/bin/env bash
# Stops what cp-up.sh / containerd-up.sh / kubelet-up.sh started (by their recorded pids only), then unmounts
# what kubelet/containerd left mounted under $RUN and removes the pod cgroups and the CNI bridge.
HERE=$(cd "$(dirname "$0")" && pwd)
RUN=${RUN:-$HERE/run}
stop() { local f=$RUN/pids/$1; [ -f "$f" ] || return 0; local p; p=$(cat "$f")
  if kill -0 "$p" 2>/dev/null; then kill "$p"; for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$p" 2>/dev/null && kill -9 "$p"; fi; rm -f "$f"; echo "stopped $1 ($p)"; }
# Pods first: kubelet off, then containers (their shims were reparented away from containerd, so kill the tasks through containerd).
stop kubelet
CTR=${CTR:-$(command -v ctr)}
if [ -S "$RUN/containerd/containerd.sock" ] && [ -x "${CTR:-}" ]; then
  for id in $("$CTR" -a "$RUN/containerd/containerd.sock" -n k8s.io tasks ls -q 2>/dev/null); do
    "$CTR" -a "$RUN/containerd/containerd.sock" -n k8s.io tasks kill -s KILL "$id" >/dev/null 2>&1; done
  sleep 1
  for id in $("$CTR" -a "$RUN/containerd/containerd.sock" -n k8s.io tasks ls -q 2>/dev/null); do
    "$CTR" -a "$RUN/containerd/containerd.sock" -n k8s.io tasks delete -f "$id" >/dev/null 2>&1; done
fi
stop containerd
for n in kube-scheduler kube-controller-manager kube-apiserver etcd; do stop $n; done
# shims left behind (their command line names our socket)
for p in $(pgrep -f "containerd-shim-runc-v2 .*-address $RUN/containerd/containerd.sock" 2>/dev/null); do kill -9 "$p" && echo "killed shim $p"; done
# mounts under $RUN, deepest first
for m in $(awk -v r="$RUN" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r); do umount -l "$m" && echo "unmounted $m"; done
# netns made by the CRI in /var/run/netns (containerd 1.6; 2.x keeps them under its state dir, unmounted above)
for ns in /var/run/netns/cni-*; do [ -e "$ns" ] || continue; umount "$ns" 2>/dev/null; rm -f "$ns"; echo "removed $ns"; done
rmdir /var/run/netns 2>/dev/null
# our FORWARD rules, the ip_forward value from before, and the chains an older kubelet config left
while iptables -w -S FORWARD | grep -q 'rbs-realnode'; do
  r=$(iptables -w -S FORWARD | grep -m1 'rbs-realnode' | sed 's/^-A /-D /'); eval "iptables -w $r"; done
[ -f "$RUN/ip_forward.orig" ] && cat "$RUN/ip_forward.orig" > /proc/sys/net/ipv4/ip_forward && rm -f "$RUN/ip_forward.orig"
iptables -w -D INPUT -j KUBE-FIREWALL 2>/dev/null; iptables -w -D OUTPUT -j KUBE-FIREWALL 2>/dev/null
for ipt in iptables ip6tables; do for t in filter nat mangle; do for c in KUBE-FIREWALL KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT; do
  $ipt -w -t $t -F $c 2>/dev/null && $ipt -w -t $t -X $c 2>/dev/null; done; done; done
ip link show rbs0 >/dev/null 2>&1 && ip link del rbs0 && echo "deleted bridge rbs0"
# what the kubelet and libcni put outside $RUN at fixed paths
for l in /var/log/containers/*.log; do [ -L "$l" ] && case $(readlink "$l") in "$RUN"/*) rm -f "$l";; esac; done
rmdir /var/log/containers 2>/dev/null
rm -rf /var/lib/kubelet/device-plugins/kubelet.sock; rmdir /var/lib/kubelet/device-plugins /var/lib/kubelet 2>/dev/null
rm -f /var/lib/cni/results/rbs-* /var/lib/cni/results/cni-loopback-*; rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null
rmdir /run/containerd/s /run/containerd/runc/k8s.io /run/containerd/runc /run/containerd 2>/dev/null
# the kubelet's cgroup trees (kubepods/...) in every v1 hierarchy, deepest first; only empty ones go
for h in /sys/fs/cgroup/*/; do [ -d "$h/kubepods" ] || continue
  find "$h/kubepods" -depth -type d -exec rmdir {} \; 2>/dev/null; [ -d "$h/kubepods" ] && echo "left $h/kubepods (busy)"; done
# host-local IPAM leases and CNI cache of our network
rm -rf "$RUN/cni/ipam" /var/lib/cni/results/rbs-* 2>/dev/null
true
