#!/usr/bin/env bash
# Installs a Temporal server that can require mutual TLS (the CLI's dev server has no TLS flags), outside the repo
# and keyed by version: $RBS_CACHE/temporal-server-<v>/temporal-server, go.temporal.io/server's cmd/server.
# Tests run it with a YAML config (SQLite persistence, mTLS: test/harness/temporal-tls-server.ts).
# RBS_CACHE defaults to ~/.cache/rbs. Idempotent and silent when already cached.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=versions.env
source scripts/versions.env
CACHE=${RBS_CACHE:-$HOME/.cache/rbs}
say() { echo "install-temporal-server: $*" >&2; }

dir="$CACHE/temporal-server-$TEMPORAL_SERVER_VERSION"
[ -x "$dir/temporal-server" ] && exit 0
command -v go >/dev/null || { say "Go (with access to the Go module proxy) is needed to build the Temporal server; install it and re-run"; exit 1; }

say "building the Temporal server $TEMPORAL_SERVER_VERSION (a minute or two once the Temporal CLI is built)"
mkdir -p "$CACHE"
tmp=$(mktemp -d "$CACHE/.tmp-temporal-server-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
start=$(date +%s)
# `go install go.temporal.io/server/cmd/server@v` would work (no replace directives) but resolves the server's own,
# older dependency versions and compiles most of them again. A throwaway module that requires the Temporal CLI
# (which embeds this server version) resolves exactly the CLI's versions instead, so with the CLI's build flags
# (scripts/setup.sh) every shared package comes from Go's build cache.
mkdir "$tmp/mod" "$tmp/bin"
cat >"$tmp/mod/go.mod" <<MOD
module rbs.invalid/temporal-server-build

go 1.25.0

require (
	github.com/temporalio/cli $TEMPORAL_CLI_VERSION
	go.temporal.io/server $TEMPORAL_SERVER_VERSION
)
MOD
(cd "$tmp/mod" && go build -mod=mod -ldflags "-s -w" -o "$tmp/bin/temporal-server" go.temporal.io/server/cmd/server)
chmod 755 "$tmp/bin"
say "  built in $(($(date +%s) - start))s"
# One rename into place; if a concurrent run got there first, keep theirs.
mv -T "$tmp/bin" "$dir" 2>/dev/null || [ -x "$dir/temporal-server" ] || { say "could not move $tmp/bin to $dir"; exit 1; }
