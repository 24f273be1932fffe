#!/bin/bash
# runc wrapper for debugging: runs /usr/sbin/runc with --debug and keeps a copy of each bundle's config.json
# and the runc log under /work/realnode/run/runc-debug/.
D=/work/realnode/run/runc-debug; mkdir -p $D
n=$(date +%s%N)
echo "$*" > $D/$n.args
args=("$@"); for ((i=0;i<${#args[@]};i++)); do
  [ "${args[$i]}" = "--bundle" ] && cp "${args[$((i+1))]}/config.json" $D/$n.config.json 2>/dev/null
  [ "${args[$i]}" = "--log" ] && log=${args[$((i+1))]}
done
/usr/sbin/runc --debug "$@"; rc=$?
[ -n "$log" ] && cp "$log" $D/$n.log 2>/dev/null
exit $rc
