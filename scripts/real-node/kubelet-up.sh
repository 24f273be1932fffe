#!/usr/bin/env bash
# Starts the kubelet (KUBELET=path, default the v1.37.2 build) against cp-up.sh's apiserver and containerd-up.sh's
# containerd. Its serving certificate is signed by the test CA for the node's addresses.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RUN=${RUN:-$HERE/run}
NODE=${NODE:-realnode-1}
KUBELET=${KUBELET:-$HOME/.cache/rbs-proto/kubernetes-v1.37.2/kubelet}
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=${KUBELET_PORT:-$(freeport)}; HZ=$(freeport)
NODE_IP=${NODE_IP:-$(ip -4 -o route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')}
P=$RUN/pki
# serving certificate for the apiserver's calls (logs, exec): SAN = node IP and name
if [ ! -f "$P/kubelet-serving.crt" ]; then
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$P/kubelet-serving.key" 2>/dev/null
  openssl req -new -key "$P/kubelet-serving.key" -subj "/O=system:nodes/CN=system:node:$NODE" -out "$P/kubelet-serving.csr"
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth" "subjectAltName=IP:$NODE_IP,IP:127.0.0.1,DNS:$NODE" > "$P/kubelet-serving.ext"
  openssl x509 -req -in "$P/kubelet-serving.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial -days 2 -sha256 \
    -extfile "$P/kubelet-serving.ext" -out "$P/kubelet-serving.crt" 2>/dev/null
fi
mkdir -p "$RUN"/{logs,pids,kubelet,pod-logs}
sed -e "s|@RUN@|$RUN|g" -e "s|@PORT@|$PORT|" -e "s|@HEALTHZ@|$HZ|" "$HERE/conf/kubelet.yaml" > "$RUN/kubelet/config.yaml"
echo "KUBELET_HEALTHZ=$HZ" >> "$RUN/env"
date +%s.%N > "$RUN/kubelet.started"
setsid "$KUBELET" --config="$RUN/kubelet/config.yaml" --kubeconfig="$RUN/kubelet.kubeconfig" \
  --root-dir="$RUN/kubelet" --cert-dir="$RUN/kubelet/pki" --hostname-override="$NODE" --node-ip="$NODE_IP" \
  --node-labels=rbs.dev/real-node=true ${KUBELET_ARGS:-} > "$RUN/logs/kubelet.log" 2>&1 < /dev/null &
echo $! > "$RUN/pids/kubelet"
echo "kubelet pid $(cat "$RUN/pids/kubelet") port $PORT node-ip $NODE_IP"
