#!/usr/bin/env bash
# Deletes and re-creates the test pod N times; prints create->Running+Ready seconds each time.
HERE=$(cd "$(dirname "$0")" && pwd); cd "$HERE"
N=${1:-3}; POD=/api/v1/namespaces/realnode-test/pods/grpc-health
state() { ./k.sh GET $POD | python3 -c 'import json,sys; d=json.load(sys.stdin); s=d.get("status",{}); print(d.get("kind")=="Pod" and s.get("phase"), [c["status"] for c in s.get("conditions",[]) if c["type"]=="Ready"])'; }
for n in $(seq "$N"); do
  ./k.sh DELETE $POD >/dev/null
  for _ in $(seq 200); do [ "$(./k.sh GET $POD | python3 -c 'import json,sys; print(json.load(sys.stdin).get("kind"))')" = Status ] && break; sleep 0.2; done
  t0=$(date +%s.%N); ./k.sh POST /api/v1/namespaces/realnode-test/pods manifests/05-pod.json >/dev/null
  for _ in $(seq 600); do r=$(state); [ "$r" = "Running ['True']" ] && break; sleep 0.1; done
  echo "run $n: $r after $(python3 -c "import time;print(round(time.time()-$t0,2))")s"
done
