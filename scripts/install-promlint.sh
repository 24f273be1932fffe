#!/usr/bin/env bash
# Builds promlint (scripts/promlint: the checks of `promtool check metrics`, from client_golang's parser and linter)
# for the test that scrapes every metrics endpoint, outside the repo and keyed by client_golang's version:
#   $RBS_CACHE/promlint-<client_golang version>/promlint
# Idempotent; about ten seconds from a cold Go module cache. The build goes to a temporary directory first, so a
# cache entry is never partial.
set -euo pipefail
cd "$(dirname "$0")/promlint"
CACHE=${RBS_CACHE:-$HOME/.cache/rbs}
version=$(sed -n 's#^require github.com/prometheus/client_golang \(v[^ ]*\)$#\1#p' go.mod)
[ -n "$version" ] || { echo "install-promlint: no client_golang version in scripts/promlint/go.mod" >&2; exit 1; }
dir="$CACHE/promlint-$version"
[ -x "$dir/promlint" ] && exit 0
command -v go >/dev/null || { echo "install-promlint: Go (with access to the Go module proxy) is needed to build promlint" >&2; exit 1; }
echo "install-promlint: building promlint with client_golang $version" >&2
mkdir -p "$CACHE"
tmp=$(mktemp -d "$CACHE/.tmp-promlint-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
CGO_ENABLED=0 go build -mod=readonly -trimpath -ldflags "-s -w" -o "$tmp/promlint" .
chmod 755 "$tmp"
mv -T "$tmp" "$dir" 2>/dev/null || [ -x "$dir/promlint" ] || { echo "install-promlint: could not move the build to $dir" >&2; exit 1; }
