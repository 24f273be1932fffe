#!/usr/bin/env bash
# Installs what RBS needs outside the repo, once per machine: Debian packages (rsync, Bazel, chromium), the Temporal CLI and a
# Temporal server that requires mTLS (built from Go modules, cached under ~/.cache/rbs keyed by version) and npm
# dependencies.
# Idempotent and quick when everything is already there; `npm start` and `npm test` run it first.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=versions.env
source scripts/versions.env
CACHE=${RBS_CACHE:-$HOME/.cache/rbs}
say() { echo "setup: $*" >&2; }

# shellcheck source=lib.sh
source scripts/lib.sh

apt_packages=()
command -v rsync >/dev/null || apt_packages+=(rsync)
# The outputs benchmark's native relays (bench/transport-ceiling.ts).
command -v socat >/dev/null || apt_packages+=(socat)
# A real headless browser, for the test that opens the Temporal Web UI as an operator would.
command -v chromium >/dev/null || apt_packages+=(chromium)
# The real Bazel client and server (4.2.3, runs offline), for the data path and its tests.
command -v bazel >/dev/null || apt_packages+=(bazel-bootstrap)
SPANNER_EMULATOR=/usr/lib/google-cloud-sdk/bin/cloud_spanner_emulator/gateway_main
[ -x "$SPANNER_EMULATOR" ] || apt_packages+=(google-cloud-cli-spanner-emulator)
if [ ${#apt_packages[@]} -gt 0 ]; then
  say "installing Debian packages: ${apt_packages[*]}"
  apt_install "${apt_packages[@]}"
fi

temporal_dir="$CACHE/temporal-$TEMPORAL_CLI_VERSION"
if [ ! -x "$temporal_dir/temporal" ]; then
  command -v go >/dev/null || { say "Go is needed to build the Temporal CLI"; exit 1; }
  say "building the Temporal CLI $TEMPORAL_CLI_VERSION (a few minutes, once)"
  tmp=$(mktemp -d)
  GOBIN="$tmp" go install "github.com/temporalio/cli/cmd/temporal@$TEMPORAL_CLI_VERSION"
  mkdir -p "$temporal_dir"
  mv "$tmp/temporal" "$temporal_dir/temporal"
  rmdir "$tmp"
fi
# The Temporal server requiring mTLS and its Web UI (`npm start`, tests): after the CLI,
# whose Go build cache it reuses.
bash scripts/install-temporal-server.sh

# npm ci takes a minute (better-sqlite3 compiles from source), so its result is kept, keyed by the lock file and
# Node's version, and a fresh clone links to it (hard links: a few seconds). Nothing writes into node_modules
# in place; npm replaces files rather than rewriting them.
deps=$CACHE/node_modules-$( (cat package-lock.json && node --version) | sha256sum | cut -c1-16)
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  rm -rf node_modules
  if [ -f "$deps/.package-lock.json" ]; then
    say "linking npm dependencies from $deps"
    cp -al "$deps" node_modules 2>/dev/null || { rm -rf node_modules && cp -a "$deps" node_modules; } # another filesystem
  else
    say "installing npm dependencies"
    npm ci --no-audit --no-fund --loglevel=error
    rm -rf "$deps.tmp"
    { cp -al node_modules "$deps.tmp" 2>/dev/null || cp -a node_modules "$deps.tmp"; } && mv -T "$deps.tmp" "$deps" 2>/dev/null ||
      rm -rf "$deps.tmp"
    # The two newest lock files' dependencies are enough.
    find "$CACHE" -maxdepth 1 -name 'node_modules-*' ! -name '*.tmp' -printf '%T@ %p\n' | sort -rn | tail -n +3 | cut -d' ' -f2- |
      xargs -r rm -rf
  fi
  touch node_modules/.package-lock.json
fi
# `npx rbs` finds the CLI here (npm does not link a package's own bin into its node_modules).
ln -sf ../../cli/rbs.js node_modules/.bin/rbs
