#!/usr/bin/env bash
# Installs a real Kubernetes control plane for tests, without Docker, outside the repo and keyed by version:
#   $RBS_CACHE/kubernetes-<v>/{kube-apiserver,kube-controller-manager,kube-scheduler}  (built from Go modules)
#   $RBS_CACHE/kwok-<v>/kwok and $RBS_CACHE/helm-<v>/helm                           (go install)
#   $RBS_CACHE/gateway-api-<v>/*.yaml: Gateway API's standard-channel CRDs         (from the Go module)
#   $RBS_CACHE/traefik-<v>/traefik: an SNI-passthrough Gateway API controller       (built from its Go module)
#   etcd from the Debian package etcd-server                                          (apt)
# RBS_CACHE defaults to ~/.cache/rbs. Idempotent: what is already cached is skipped. Each tool is built in a
# temporary directory under the cache and moved into place in one rename, so a cache entry is never partial.
# The first Kubernetes build takes a while (tens of minutes on 2 cores); later runs are instant.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=versions.env
source scripts/versions.env
CACHE=${RBS_CACHE:-$HOME/.cache/rbs}
say() { echo "install-kube: $*" >&2; }

# shellcheck source=lib.sh
source scripts/lib.sh

need_go() {
  command -v go >/dev/null || {
    say "Go (1.26 or newer, with access to the Go module proxy) is needed to build $1; install it and re-run"
    exit 1
  }
}

mkdir -p "$CACHE"
tmp_dirs=()
cleanup() { [ ${#tmp_dirs[@]} -eq 0 ] || rm -rf "${tmp_dirs[@]}"; }
trap cleanup EXIT
trap 'exit 130' INT # so that an interrupted run also cleans up
trap 'exit 143' TERM
# Sets $tmp to a new temporary directory on the cache's filesystem (so that moving a finished build into place
# is a rename), removed on exit. Not called as $(new_tmp): the cleanup list must be updated in this shell.
new_tmp() {
  tmp=$(mktemp -d "$CACHE/.tmp-$1-XXXXXX")
  chmod 755 "$tmp" # mktemp makes it private; the cache entry it becomes is not
  tmp_dirs+=("$tmp")
}
# Moves a finished build directory into place; if a concurrent run got there first, keeps theirs.
install_dir() {
  mv -T "$1" "$2" 2>/dev/null || [ -d "$2" ] || { say "could not move $1 to $2"; exit 1; }
}
# True when every named executable is in the directory.
have_all() {
  local dir=$1 bin
  shift
  for bin in "$@"; do [ -x "$dir/$bin" ] || return 1; done
}
seconds_since() { echo $(($(date +%s) - $1)); }

# --- etcd (the apiserver's storage) -----------------------------------------------------------------------
if ! command -v etcd >/dev/null; then
  say "installing Debian package etcd-server"
  apt_install etcd-server
  # The package starts a system etcd on the default ports; tests run their own instances on free ports.
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    as_root systemctl disable --now etcd >/dev/null 2>&1 || true
  fi
fi

# --- kube-apiserver, kube-controller-manager, kube-scheduler ----------------------------------------------
# k8s.io/kubernetes points its k8s.io/* staging modules at ./staging with `replace`, so `go install` refuses it.
# Instead: a throwaway module that requires k8s.io/kubernetes and replaces each staging module with its
# published v0.<minor>.<patch>, then `go build` of the commands, with the version stamped in as `make` does.
# build_kube <cache dir> <command...>: builds the commands of k8s.io/kubernetes into the directory, unless there.
build_kube() {
  local kube_dir=$1 work kube_gomod staging staging_version minor ldflags pkg bin start
  shift
  local kube_bins=("$@")
  have_all "$kube_dir" "${kube_bins[@]}" && return
  need_go "Kubernetes $KUBERNETES_VERSION"
  say "building Kubernetes $KUBERNETES_VERSION: ${kube_bins[*]} (tens of minutes on 2 cores, once)"
  new_tmp "$(basename "$kube_dir")"
  work=$tmp
  mkdir "$work/mod" "$work/bin"
  cd "$work/mod"
  kube_gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p') || true
  [ -f "$kube_gomod" ] || { say "cannot download k8s.io/kubernetes@$KUBERNETES_VERSION from the Go module proxy"; exit 1; }
  # Staging modules: replaced into ./staging/ and required by k8s.io/kubernetes (its go.mod is gofmt-ed).
  staging=$(awk '
    /^require \(/ { inreq = 1; next }
    /^replace \(/ { inrep = 1; next }
    /^\)/ { inreq = inrep = 0; next }
    inreq && NF >= 2 { req[$1] = 1 }
    /^require [^(]/ { req[$2] = 1 }
    function rep_line(first,   i) {
      for (i = first; i < NF; i++) if ($i == "=>") { if ($(i + 1) ~ /^\.\/staging\//) rep[$first] = 1; return }
    }
    inrep { rep_line(1) }
    /^replace [^(]/ { rep_line(2) }
    END { for (m in rep) if (m in req) print m }
  ' "$kube_gomod" | sort)
  [ -n "$staging" ] || { say "found no staging modules in $kube_gomod"; exit 1; }
  staging_version="v0.${KUBERNETES_VERSION#v1.}" # v1.37.2 -> v0.37.2
  {
    echo "module rbs.invalid/kube-build"
    echo
    grep -E '^(go|godebug) ' "$kube_gomod" # the same language version and GODEBUG defaults as upstream
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    echo "replace ("
    for m in $staging; do echo "	$m => $m $staging_version"; done
    echo ")"
  } >go.mod
  minor=${KUBERNETES_VERSION#v1.}
  minor=${minor%%.*}
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  done
  # One build at a time (the three share most packages, so the later ones reuse the build cache).
  for bin in "${kube_bins[@]}"; do
    start=$(date +%s)
    say "  go build $bin"
    CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "$ldflags" -o "$work/bin/$bin" "k8s.io/kubernetes/cmd/$bin"
    say "  built $bin in $(seconds_since "$start")s"
  done
  "$work/bin/${kube_bins[0]}" --version >&2
  cd - >/dev/null
  rm -rf "$kube_dir" # an incomplete directory left by hand; a complete one was skipped above
  install_dir "$work/bin" "$kube_dir"
}
build_kube "$CACHE/kubernetes-$KUBERNETES_VERSION" kube-apiserver kube-controller-manager kube-scheduler
# The real node's kubelet (test/harness/kube-node.ts), the same version: no skew. Quick once the above is built,
# whose Go build cache it reuses.
build_kube "$CACHE/kubelet-$KUBERNETES_VERSION" kubelet

# --- kwok (fake nodes: pods bound to its nodes go Running) and helm -------------------------------------------
go_install_tool() { # go_install_tool <name> <version> <package> [go build flags...]
  local name=$1 version=$2 pkg=$3 dir tmp start
  shift 3
  dir="$CACHE/$name-$version"
  [ -x "$dir/$name" ] && return
  need_go "$name $version"
  say "building $name $version (a few minutes, once)"
  new_tmp "$name-$version"
  start=$(date +%s)
  CGO_ENABLED=0 GOBIN="$tmp" go install -trimpath "$@" "$pkg@$version"
  say "  built $name in $(seconds_since "$start")s"
  rm -rf "$dir"
  install_dir "$tmp" "$dir"
}
go_install_tool kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok -ldflags "-s -w"
helm_module="helm.sh/helm/${HELM_VERSION%%.*}" # helm.sh/helm/v4 (or /v3)
go_install_tool helm "$HELM_VERSION" "$helm_module/cmd/helm" \
  -ldflags "-s -w -X $helm_module/internal/version.version=$HELM_VERSION -X $helm_module/internal/version.gitTreeState=clean"

# --- Gateway API CRDs (the agents' TLSRoutes; YAML shipped in the Go module) ---------------------------------
gateway_dir="$CACHE/gateway-api-$GATEWAY_API_VERSION"
if [ ! -f "$gateway_dir/gateway.networking.k8s.io_tlsroutes.yaml" ]; then
  need_go "the Gateway API CRDs $GATEWAY_API_VERSION"
  say "fetching the Gateway API $GATEWAY_API_VERSION CRDs"
  module_dir=$(go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p') || true
  [ -d "$module_dir/config/crd/standard" ] || { say "cannot download sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION"; exit 1; }
  new_tmp "gateway-api-$GATEWAY_API_VERSION"
  # The CRDs only: the safe-upgrades admission policy guards upgrades of a shared cluster, not a test's own.
  cp "$module_dir"/config/crd/standard/gateway.networking.k8s.io_*.yaml "$tmp/"
  rm -f "$tmp"/gateway.networking.k8s.io_vap_*.yaml
  chmod 644 "$tmp"/*.yaml
  rm -rf "$gateway_dir"
  install_dir "$tmp" "$gateway_dir"
fi

# --- Traefik: a real SNI-passthrough gateway (Gateway API TLSRoute) for the route tests -------------------------
# Its go.mod has replace directives, so it is built inside a copy of its module, not with go install. Three things
# it needs are not served by the Go proxy here; none is on the path of a TLS-passthrough route:
#   - the ACME DNS-01 providers (lego's providers/dns: several cloud SDKs are refused), so a DNS challenge is refused;
#   - the revision of its fork of go-http-auth (the basic and digest auth middlewares) that v3.7 names: the revision
#     v3.6 names instead, which has everything v3.7 uses of it (fixes made since may be missing: a test binary only);
#   - the dynamic/ext module, a nested module left out of the zip: its two empty extension types.
traefik_dir="$CACHE/traefik-$TRAEFIK_VERSION"
if [ ! -x "$traefik_dir/traefik" ]; then
  need_go "Traefik $TRAEFIK_VERSION"
  say "building Traefik $TRAEFIK_VERSION (a few minutes, once)"
  start=$(date +%s)
  module_dir=$(go mod download -json "github.com/traefik/traefik/v3@$TRAEFIK_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p') || true
  [ -d "$module_dir/cmd/traefik" ] || { say "cannot download github.com/traefik/traefik/v3@$TRAEFIK_VERSION"; exit 1; }
  new_tmp "traefik-$TRAEFIK_VERSION"
  src="$tmp/src"
  cp -r "$module_dir" "$src"
  chmod -R u+w "$src"
  acme="$src/pkg/provider/acme/provider.go"
  grep -q '"github.com/go-acme/lego/v5/providers/dns"' "$acme" && grep -q 'dns\.NewDNSChallengeProviderByName(p\.DNSChallenge\.Provider)' "$acme" ||
    { say "Traefik's $acme no longer uses lego's DNS providers as this build expects: revisit it"; exit 1; }
  sed -i -e '\#"github.com/go-acme/lego/v5/providers/dns"#d' \
    -e 's#dns\.NewDNSChallengeProviderByName(p\.DNSChallenge\.Provider)#nil, fmt.Errorf("this build has no ACME DNS providers: %s", p.DNSChallenge.Provider)#' "$acme"
  mkdir -p "$src/pkg/config/dynamic/ext"
  printf 'module github.com/traefik/traefik/dynamic/ext\n\ngo 1.26.0\n' >"$src/pkg/config/dynamic/ext/go.mod"
  printf 'package ext\n\n// HTTP is a dynamic.HTTP extension.\ntype HTTP struct{}\n\n// Router is a dynamic.Router extension.\ntype Router struct{}\n' \
    >"$src/pkg/config/dynamic/ext/ext.go"
  (cd "$src" && go mod edit -replace github.com/abbot/go-http-auth=github.com/containous/go-http-auth@v0.4.1-0.20200324110947-a37a7636d23e &&
    CGO_ENABLED=0 go build -mod=mod -buildvcs=false -trimpath -o "$tmp/traefik" \
      -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION" ./cmd/traefik)
  rm -rf "$src"
  say "  built Traefik in $(seconds_since "$start")s"
  rm -rf "$traefik_dir"
  install_dir "$tmp" "$traefik_dir"
fi
