#!/usr/bin/env bash
# kubeconfig.sh <server> <pki-dir> <cert-name> > file   (embeds ca.crt, <cert-name>.crt/.key)
set -euo pipefail
b64() { base64 -w0 < "$1"; }
cat <<JSON
{"apiVersion":"v1","kind":"Config",
 "clusters":[{"name":"t","cluster":{"server":"$1","certificate-authority-data":"$(b64 "$2/ca.crt")"}}],
 "users":[{"name":"t","user":{"client-certificate-data":"$(b64 "$2/$3.crt")","client-key-data":"$(b64 "$2/$3.key")"}}],
 "contexts":[{"name":"t","context":{"cluster":"t","user":"t"}}],"current-context":"t"}
JSON
