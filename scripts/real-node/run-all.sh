#!/usr/bin/env bash
# The whole prototype, timed: control plane, containerd, images, kubelet (-> node Ready), storage + restricted
# namespace, then the pod (-> Running+Ready) and 3 more delete/create cycles. Leaves everything running:
# stop with ./down.sh. CONTAINERD_DIR=~/.cache/rbs-proto/containerd-v2.4.2 selects containerd 2.x.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); cd "$HERE"; RUN=${RUN:-$HERE/run}
now() { date +%s.%N; }; since() { python3 -c "print(round($(now)-$1,2))"; }
rm -rf "$RUN"; mkdir -p "$RUN"
t=$(now); ./cp-up.sh; echo "TIME control plane up: $(since $t)s"
t=$(now); ./containerd-up.sh; echo "TIME containerd up: $(since $t)s"
CTR=ctr; [ -n "${CONTAINERD_DIR:-}" ] && CTR=$CONTAINERD_DIR/ctr
t=$(now); CTR=$CTR ./images.sh >/dev/null; echo "TIME images built+imported: $(since $t)s"
t=$(now); ./kubelet-up.sh
until [ "$(./k.sh GET /api/v1/nodes/realnode-1 | python3 -c 'import json,sys; d=json.load(sys.stdin); print([c["status"] for c in d.get("status",{}).get("conditions",[]) if c["type"]=="Ready"])' 2>/dev/null)" = "['True']" ]; do
  kill -0 "$(cat "$RUN/pids/kubelet")" || { echo "kubelet died"; tail -20 "$RUN/logs/kubelet.log"; exit 1; }; sleep 0.1; done
echo "TIME kubelet start -> node Ready: $(since $t)s"
mkdir -p "$RUN/volumes/pv-1"; sed "s|@RUN@|$RUN|" manifests/03-pv.json > "$RUN/pv.json"
./k.sh POST /api/v1/namespaces manifests/01-namespace.json >/dev/null
./k.sh POST /apis/storage.k8s.io/v1/storageclasses manifests/02-storageclass.json >/dev/null
./k.sh POST /api/v1/persistentvolumes "$RUN/pv.json" >/dev/null
./k.sh POST /api/v1/namespaces/realnode-test/persistentvolumeclaims manifests/04-pvc.json >/dev/null
./k.sh POST /api/v1/namespaces/realnode-test/serviceaccounts manifests/04b-serviceaccount.json >/dev/null
./k.sh POST /api/v1/namespaces/realnode-test/secrets manifests/04c-secret.json >/dev/null
until ./k.sh GET /api/v1/namespaces/realnode-test/serviceaccounts/default | grep -q '"uid"'; do sleep 0.2; done
t=$(now); ./k.sh POST /api/v1/namespaces/realnode-test/pods manifests/05-pod.json | grep -E '"(kind|message)"' | head -2
until [ "$(./k.sh GET /api/v1/namespaces/realnode-test/pods/grpc-health | python3 -c 'import json,sys; s=json.load(sys.stdin).get("status",{}); print(s.get("phase"), [c["status"] for c in s.get("conditions",[]) if c["type"]=="Ready"])')" = "Running ['True']" ]; do
  [ "$(since $t | cut -d. -f1)" -lt 120 ] || { echo "pod not Ready in 120s"; grep '^E' "$RUN/logs/kubelet.log" | tail -5; exit 1; }; sleep 0.1; done
echo "TIME first pod create -> Running+Ready (PV binding, first sandbox): $(since $t)s"
./pod-cycle.sh 3
cat "$RUN/volumes/pv-1/hello.txt"
if [ -f "${AGENT_TAR:-$HOME/.cache/rbs-proto/agent.tar}" ]; then
  t=$(now); $CTR -a "$RUN/containerd/containerd.sock" -n k8s.io images import "${AGENT_TAR:-$HOME/.cache/rbs-proto/agent.tar}" >/dev/null
  echo "TIME agent image ($(du -h "${AGENT_TAR:-$HOME/.cache/rbs-proto/agent.tar}" | cut -f1) docker-archive) import: $(since $t)s"
  ./agent-test.sh
fi
