#!/usr/bin/env bash
# `make fresh-check`: `make test` on a Debian root made from nothing, as a new user's
# machine would be: debootstrap's minimal base, then only git, make and python3 (what
# the README asks for). Run by hand (it takes root, the Debian mirror and most of an
# hour), not in CI. Usage: devkit/fresh-check.sh [bookworm|trixie ...]
set -euo pipefail

RELEASES=("${@:-bookworm}")
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
WORK=${FRESH_CHECK_DIR:-/var/tmp/voting-fresh-check}
SRC=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "fresh-check needs root (debootstrap, chroot)" >&2; exit 2; }
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap

for release in "${RELEASES[@]}"; do
  root="$WORK/$release"
  log="$WORK/$release.log"
  mkdir -p "$WORK"
  echo "== $release: a minimal Debian root in $root (log: $log)"
  started=$(date +%s)
  rm -rf "$root"
  debootstrap --variant=minbase "$release" "$root" "$MIRROR" > "$log" 2>&1
  mounts=(proc sys dev dev/pts)
  mount -t proc proc "$root/proc"
  mount -t sysfs sys "$root/sys"
  mount --bind /dev "$root/dev"
  mount --bind /dev/pts "$root/dev/pts"
  mount -t tmpfs tmpfs "$root/dev/shm" 2>/dev/null || true
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  # The new machine sits behind this one's network: its proxy and the CAs it trusts
  # (a TLS-inspecting proxy re-signs npm's and PyPI's certificates) come along, as they
  # would be set up on any machine of that network; nothing else does.
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp -r /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
  cleanup() {
    umount "$root/dev/shm" 2>/dev/null || true
    for m in $(printf '%s\n' "${mounts[@]}" | tac); do umount -l "$root/$m" 2>/dev/null || true; done
  }
  trap cleanup EXIT
  network_env=()
  for var in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY \
      NODE_EXTRA_CA_CERTS SSL_CERT_FILE PIP_CERT REQUESTS_CA_BUNDLE CURL_CA_BUNDLE GIT_SSL_CAINFO; do
    if [ -n "${!var:-}" ]; then network_env+=("$var=${!var}"); fi
  done
  base=$(( $(date +%s) - started ))
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    "${network_env[@]}" bash -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends git make python3 ca-certificates' \
    >> "$log" 2>&1
  git clone -q "$SRC" "$root/root/voting"
  echo "   base system in ${base}s; now make test inside it"
  if chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
      "${network_env[@]}" bash -c 'cd /root/voting && time make test PYTEST_ARGS="-p no:cacheprovider"' >> "$log" 2>&1; then
    result=passed
  else
    result=FAILED
  fi
  cleanup
  trap - EXIT
  total=$(( $(date +%s) - started ))
  echo "== $release: make test $result in ${total}s in all (debootstrap ${base}s); tail of $log:"
  tail -5 "$log"
  [ "$result" = passed ] || exit 1
done
