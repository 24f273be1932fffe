#!/usr/bin/env bash
# Starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler (v1.37.2, the project's cached build)
# on free loopback ports, like test/harness/kube-control-plane.ts, with state in $RUN (default /work/realnode/run).
# Writes $RUN/env (SERVER=...), $RUN/admin.kubeconfig, $RUN/kubelet.kubeconfig and pid files in $RUN/pids/.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RUN=${RUN:-$HERE/run}
NODE=${NODE:-realnode-1}
KBIN=${KBIN:-$HOME/.cache/rbs/kubernetes-v1.37.2}
mkdir -p "$RUN"/{logs,pids}
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ETCD=$(freeport); PEER=$(freeport); API=$(freeport); CM=$(freeport); SCH=$(freeport)
SERVER=https://127.0.0.1:$API
rm -rf "$RUN/pki" "$RUN/etcd"
"$HERE/pki.sh" "$RUN/pki" "$NODE"
P=$RUN/pki
for u in admin kube-controller-manager kube-scheduler; do "$HERE/kubeconfig.sh" "$SERVER" "$P" "$u" > "$RUN/$u.kubeconfig"; done
"$HERE/kubeconfig.sh" "$SERVER" "$P" kubelet-client > "$RUN/kubelet.kubeconfig"
chmod 600 "$RUN"/*.kubeconfig
echo "SERVER=$SERVER" > "$RUN/env"
bg() { local name=$1; shift; setsid "$@" > "$RUN/logs/$name.log" 2>&1 < /dev/null & echo $! > "$RUN/pids/$name"; }
bg etcd etcd --data-dir="$RUN/etcd" --listen-client-urls=http://127.0.0.1:$ETCD --advertise-client-urls=http://127.0.0.1:$ETCD \
  --listen-peer-urls=http://127.0.0.1:$PEER --initial-advertise-peer-urls=http://127.0.0.1:$PEER \
  --initial-cluster=default=http://127.0.0.1:$PEER --logger=zap --log-level=warn
until curl -sf http://127.0.0.1:$ETCD/health >/dev/null; do sleep 0.2; done
bg kube-apiserver "$KBIN/kube-apiserver" --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port=$API \
  --etcd-servers=http://127.0.0.1:$ETCD --etcd-prefix=/registry \
  --tls-cert-file=$P/apiserver.crt --tls-private-key-file=$P/apiserver.key --client-ca-file=$P/ca.crt \
  --service-account-issuer=$SERVER --service-account-key-file=$P/service-account.pub \
  --service-account-signing-key-file=$P/service-account.key --service-cluster-ip-range=10.0.0.0/24 \
  --authorization-mode=Node,RBAC --allow-privileged=true --endpoint-reconciler-type=none \
  --cert-dir=$RUN/kube-apiserver --feature-gates=WatchList=false \
  --kubelet-client-certificate=$P/apiserver-kubelet-client.crt --kubelet-client-key=$P/apiserver-kubelet-client.key \
  --enable-admission-plugins=NodeRestriction --kubelet-preferred-address-types=InternalIP
K() { curl -sf --cacert $P/ca.crt --cert $P/admin.crt --key $P/admin.key "$@"; }
until K "$SERVER/readyz" >/dev/null; do sleep 0.3; done
comp() { local name=$1 port=$2; shift 2
  bg $name "$KBIN/$name" --kubeconfig=$RUN/$name.kubeconfig --authentication-kubeconfig=$RUN/$name.kubeconfig \
    --authorization-kubeconfig=$RUN/$name.kubeconfig --authentication-skip-lookup --bind-address=127.0.0.1 \
    --secure-port=$port --cert-dir=$RUN/$name --leader-elect=false "$@"; }
comp kube-controller-manager $CM --service-account-private-key-file=$P/service-account.key --root-ca-file=$P/ca.crt \
  --use-service-account-credentials=true
comp kube-scheduler $SCH
echo "control plane up: $SERVER (admin kubeconfig $RUN/admin.kubeconfig)"
