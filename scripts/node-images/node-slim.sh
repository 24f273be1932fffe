#!/usr/bin/env bash
# Turns a debootstrap'd bookworm at $1 into what the Dockerfile's NODE_IMAGE (node:<v>-bookworm-slim) gives it:
# this machine's Node (binary, npm, corepack, headers) and debian-slim's apt and dpkg settings.
set -euo pipefail
R=$1
install -m 755 /usr/bin/node "$R/usr/bin/node"
rm -rf "$R/usr/lib/node_modules"; mkdir -p "$R/usr/lib/node_modules"
cp -a /usr/lib/node_modules/npm /usr/lib/node_modules/corepack "$R/usr/lib/node_modules/"
# node-gyp builds native modules (better-sqlite3) against these headers: nodedir=/usr, no download
rm -rf "$R/usr/include/node"; mkdir -p "$R/usr/include"; cp -a /usr/include/node "$R/usr/include/"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$R/usr/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$R/usr/bin/npx"
ln -sf ../lib/node_modules/corepack/dist/corepack.js "$R/usr/bin/corepack"
# This workplace reaches the npm registry through a TLS-intercepting egress proxy: give the image the host's
# extra CAs (the Dockerfile's `apt-get install ca-certificates` folds them into /etc/ssl/certs) and npm's
# global cafile setting, as the host has them. For local test images only; never for a published image.
mkdir -p "$R/usr/local/share/ca-certificates" "$R/usr/etc"
cp /usr/local/share/ca-certificates/*.crt "$R/usr/local/share/ca-certificates/" 2>/dev/null || true
# Only where npm finds its CAs: never a token the host's files may hold.
for rc in /usr/etc/npmrc /etc/npmrc; do
  if [ -f "$rc" ]; then grep -E '^(cafile|strict-ssl)=' "$rc" > "$R$rc" || true; fi
done
# What debian:bookworm-slim (under node:*-bookworm-slim) adds to a plain debootstrap: apt drops downloaded .debs
# after each install, and dpkg leaves out docs, man pages and locales. Without these the Dockerfile's
# `rm -rf /var/lib/apt/lists/*` still leaves /var/cache/apt/archives behind (330 MB in the agent layer).
mkdir -p "$R/etc/apt/apt.conf.d" "$R/etc/dpkg/dpkg.cfg.d"
cat > "$R/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
echo 'Apt::AutoRemove::SuggestsImportant "false";' > "$R/etc/apt/apt.conf.d/docker-autoremove-suggests"
echo 'Acquire::Languages "none";' > "$R/etc/apt/apt.conf.d/docker-no-languages"
echo 'Acquire::GzipIndexes "true";' > "$R/etc/apt/apt.conf.d/docker-gzip-indexes"
printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' 'path-exclude /usr/share/man/*' \
  'path-exclude /usr/share/groff/*' 'path-exclude /usr/share/info/*' 'path-exclude /usr/share/lintian/*' \
  'path-exclude /usr/share/linda/*' 'path-exclude /usr/share/locale/*' 'path-include /usr/share/locale/locale.alias' \
  > "$R/etc/dpkg/dpkg.cfg.d/docker"
echo force-unsafe-io > "$R/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
# files only: directories stay, as in debian-slim (openjdk's postinst fails without /usr/share/man/man1:
# "update-alternatives: error: error creating symbolic link '/usr/share/man/man1/java.1.gz.dpkg-tmp'")
find "$R"/usr/share/doc "$R"/usr/share/man "$R"/usr/share/info "$R"/usr/share/locale -type f ! -name copyright ! -name locale.alias -delete
mkdir -p "$R"/usr/share/man/man1
rm -rf "$R"/var/cache/apt/archives/*.deb "$R"/var/lib/apt/lists/* "$R"/var/log/*.log
# debootstrap copies the host's resolv.conf/hostname; the runtime provides its own
: > "$R/etc/resolv.conf"; echo localhost > "$R/etc/hostname"
