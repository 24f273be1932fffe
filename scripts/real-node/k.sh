#!/usr/bin/env bash
# k.sh METHOD PATH [json-file|-]  — the apiserver's REST API as the admin (no kubectl needed).
HERE=$(cd "$(dirname "$0")" && pwd); RUN=${RUN:-$HERE/run}; . "$RUN/env"; P=$RUN/pki
m=$1; p=$2; shift 2
if [ $# -gt 0 ]; then data=(-H 'Content-Type: application/json' --data-binary "@$1"); else data=(); fi
curl -s --cacert $P/ca.crt --cert $P/admin.crt --key $P/admin.key -X "$m" "${data[@]}" "$SERVER$p"
