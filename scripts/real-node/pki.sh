#!/usr/bin/env bash
# Creates the test PKI with openssl, as test/harness/kube-credentials.ts does (one CA signs everything; client
# certificates carry the user as CN and the groups as O), plus the kubelet's client certificate
# (CN=system:node:<node>, O=system:nodes) and the apiserver's client certificate towards kubelets.
# Usage: pki.sh <dir> <node-name>
set -euo pipefail
dir=$1; node=$2
mkdir -p "$dir"; cd "$dir"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; chmod 600 "$1.key"; }
# sign <name> <subject> <extensions...>
sign() {
  local name=$1 subj=$2; shift 2
  key "$name"
  openssl req -new -key "$name.key" -subj "$subj" -out "$name.csr"
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" "$@" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -sha256 -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}
key ca
openssl req -x509 -new -key ca.key -subj "/CN=RBS realnode test CA" -days 30 -sha256 \
  -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.crt
sign apiserver "/CN=kube-apiserver" "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
sign admin "/O=system:masters/CN=rbs-test-admin" "extendedKeyUsage=clientAuth"
sign kube-controller-manager "/CN=system:kube-controller-manager" "extendedKeyUsage=clientAuth"
sign kube-scheduler "/CN=system:kube-scheduler" "extendedKeyUsage=clientAuth"
sign kubelet-client "/O=system:nodes/CN=system:node:$node" "extendedKeyUsage=clientAuth"
sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "extendedKeyUsage=clientAuth"
key service-account
openssl pkey -in service-account.key -pubout -out service-account.pub
