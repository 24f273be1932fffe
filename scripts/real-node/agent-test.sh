#!/usr/bin/env bash
# Runs the project's agent image (localhost/rbs/agent:slim, built by img/build-agent.sh and imported) as the
# backend's agent pod would be (manifests/08-agent-pod.json mirrors lib/compute/kubernetes/objects.ts agentPod),
# with an openssl-made mTLS secret and a local PV; prints create -> Running+Ready.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); cd "$HERE"; RUN=${RUN:-$HERE/run}
now() { date +%s.%N; }; since() { python3 -c "print(round($(now)-$1,2))"; }
T=$RUN/agent-tls; mkdir -p "$T"; cd "$T"
if [ ! -f agent.crt ]; then
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2>/dev/null
  openssl req -x509 -new -key ca.key -subj "/CN=rbs agent test CA" -days 2 -out ca.crt \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out agent.key 2>/dev/null
  openssl req -new -key agent.key -subj "/CN=agent" -out agent.csr
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth,clientAuth" \
    "subjectAltName=DNS:agent,DNS:localhost,IP:127.0.0.1" > agent.ext
  openssl x509 -req -in agent.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -sha256 -extfile agent.ext -out agent.crt 2>/dev/null
fi
python3 -c "
import json,base64
r=lambda f: base64.b64encode(open(f,'rb').read()).decode()
json.dump({'apiVersion':'v1','kind':'Secret','metadata':{'name':'agent-tls-real','namespace':'realnode-test'},'type':'Opaque',
  'data':{'ca.crt':r('ca.crt'),'tls.crt':r('agent.crt'),'tls.key':r('agent.key')}}, open('secret.json','w'))"
cd "$HERE"
mkdir -p "$RUN/volumes/pv-agent"; sed "s|@RUN@|$RUN|" manifests/07-agent-pv.json > "$RUN/agent-pv.json"
./k.sh POST /api/v1/persistentvolumes "$RUN/agent-pv.json" >/dev/null
./k.sh POST /api/v1/namespaces/realnode-test/persistentvolumeclaims manifests/07-agent-pvc.json >/dev/null
./k.sh POST /api/v1/namespaces/realnode-test/secrets "$T/secret.json" >/dev/null
POD=/api/v1/namespaces/realnode-test/pods/agent
./k.sh DELETE $POD >/dev/null || true
until [ "$(./k.sh GET $POD | python3 -c 'import json,sys; print(json.load(sys.stdin).get("kind"))')" = Status ]; do sleep 0.2; done
t=$(now); ./k.sh POST /api/v1/namespaces/realnode-test/pods manifests/08-agent-pod.json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("kind"), d.get("message",""))'
for _ in $(seq 1200); do
  r=$(./k.sh GET $POD | python3 -c 'import json,sys; s=json.load(sys.stdin).get("status",{}); print(s.get("phase"), [c["status"] for c in s.get("conditions",[]) if c["type"]=="Ready"])')
  [ "$r" = "Running ['True']" ] && break; sleep 0.1; done
echo "agent pod: $r after $(since $t)s"
