#!/usr/bin/env bash
# Installs Temporal with mutual TLS (the CLI's dev server has no TLS flags), outside the repo and keyed by version:
#   $RBS_CACHE/temporal-server-<v>/temporal-server        go.temporal.io/server's cmd/server
#   $RBS_CACHE/temporal-ui-server-<v>/temporal-ui-server  github.com/temporalio/ui-server/v2's cmd/server (the Web UI,
#                                                         which reaches the frontend with a client certificate)
# Tests and `npm start` run them with generated configs (lib/local/temporal-tls-server.ts, temporal-ui-server.ts).
# RBS_CACHE defaults to ~/.cache/rbs. Idempotent and silent when already cached.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=versions.env
source scripts/versions.env
CACHE=${RBS_CACHE:-$HOME/.cache/rbs}
say() { echo "install-temporal-server: $*" >&2; }

# name, version, package
tools=(
  "temporal-server $TEMPORAL_SERVER_VERSION go.temporal.io/server/cmd/server"
  "temporal-ui-server $TEMPORAL_UI_SERVER_VERSION github.com/temporalio/ui-server/v2/cmd/server"
)
missing=()
for tool in "${tools[@]}"; do
  read -r name version _ <<<"$tool"
  [ -x "$CACHE/$name-$version/$name" ] || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] && exit 0
command -v go >/dev/null || { say "Go (with access to the Go module proxy) is needed to build the Temporal server; install it and re-run"; exit 1; }

mkdir -p "$CACHE"
tmp=$(mktemp -d "$CACHE/.tmp-temporal-server-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# `go install go.temporal.io/server/cmd/server@v` would work (no replace directives) but resolves the server's own,
# older dependency versions and compiles most of them again. A throwaway module that requires the Temporal CLI
# (which embeds exactly these server and UI versions) resolves the CLI's versions instead, so with the CLI's build
# flags (scripts/setup.sh) every shared package comes from Go's build cache and the build is mostly linking.
mkdir "$tmp/mod"
cat >"$tmp/mod/go.mod" <<MOD
module rbs.invalid/temporal-server-build

go 1.25.0

require (
	github.com/temporalio/cli $TEMPORAL_CLI_VERSION
	go.temporal.io/server $TEMPORAL_SERVER_VERSION
	github.com/temporalio/ui-server/v2 $TEMPORAL_UI_SERVER_VERSION
)
MOD
for tool in "${missing[@]}"; do
  read -r name version pkg <<<"$tool"
  say "building $name $version (a minute or two once the Temporal CLI is built)"
  start=$(date +%s)
  mkdir "$tmp/$name"
  (cd "$tmp/mod" && go build -mod=mod -ldflags "-s -w" -o "$tmp/$name/$name" "$pkg")
  chmod 755 "$tmp/$name"
  say "  built in $(($(date +%s) - start))s"
  # One rename into place; if a concurrent run got there first, keep theirs.
  mv -T "$tmp/$name" "$CACHE/$name-$version" 2>/dev/null || [ -x "$CACHE/$name-$version/$name" ] || { say "could not move $name into $CACHE"; exit 1; }
done
