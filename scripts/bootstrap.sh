#!/usr/bin/env bash
# Installs the Debian packages layerscan builds and tests against, when they are missing.
# As root it installs them; otherwise it prints the exact command and fails.
set -euo pipefail

# Build: a C compiler, pkg-config, and the native libraries (headers + .pc files).
# Tests: a real registry (docker-registry, htpasswd from apache2-utils), skopeo to make
# docker-archives; redis-server and postgresql (the result cache in Redis, the Celery broker,
# the PostgreSQL store: the tests start their own). Benchmarks: zstd and GNU time
# (benchmarks/peers.py). openssl: the CLI beside libssl, for looking at the test registry's
# certificates by hand. Lint: clang-format (make lint, the CI gate). chromium: the web page's
# browser test (Playwright drives it by path). make fuzz: clang and its runtimes (libFuzzer,
# ASan, UBSan), which Debian ships in libclang-rt-dev (only recommended by clang, so named here).
want=(build-essential pkg-config libisal-dev libssl-dev zlib1g-dev libzstd-dev
      docker-registry apache2-utils skopeo redis-server postgresql openssl zstd time clang-format
      chromium clang libclang-rt-dev)

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm: the secret-noise test installs a real npm tree into its library-heavy image. Any npm will do
# (NodeSource's nodejs ships its own), so Debian's is installed only when there is none.
command -v npm >/dev/null 2>&1 || missing+=(npm)
# Vectorscan is the maintained fork and builds on every architecture; Hyperscan is accepted.
if ! dpkg-query -W -f='${Status}' libvectorscan-dev 2>/dev/null | grep -q "install ok installed" &&
   ! dpkg-query -W -f='${Status}' libhyperscan-dev 2>/dev/null | grep -q "install ok installed"; then
  missing+=(HS)
fi

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  hs=libvectorscan-dev
  echo "layerscan needs these Debian packages: ${missing[*]/HS/$hs}" >&2
  echo "install them with:  sudo apt-get install -y ${missing[*]/HS/$hs}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if [[ " ${missing[*]} " == *" HS "* ]]; then
  if apt-cache show libvectorscan-dev >/dev/null 2>&1; then hs=libvectorscan-dev; else hs=libhyperscan-dev; fi
  missing=("${missing[@]/HS/$hs}")
fi
echo "bootstrap: installing ${missing[*]}" >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts these on install; the tests start their own on free loopback ports.
for svc in docker-registry redis-server postgresql; do
  (systemctl stop "$svc" || service "$svc" stop) >/dev/null 2>&1 || true
done
