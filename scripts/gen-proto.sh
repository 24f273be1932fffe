#!/usr/bin/env bash
# Generates TypeScript types for proto/ into gen/proto (not committed: always derived).
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf gen/proto
mkdir -p gen/proto
files=$(cd proto && find . -name '*.proto' | sed 's|^\./||' | sort)
# shellcheck disable=SC2086
npx --no-install proto-loader-gen-types --grpcLib=@grpc/grpc-js --outDir=gen/proto \
  $files --longs=Number --enums=String --defaults --oneofs --includeDirs proto >/dev/null
