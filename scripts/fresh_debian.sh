#!/usr/bin/env bash
# The newcomer's check: runs COMMAND in a fresh, minimal Debian 12 (debootstrap --variant=minbase
# bookworm, plus git, sudo and ca-certificates, nothing else), as root, in a clone of this
# repository's commit HEAD (committed work only), in its own mount and PID namespaces.
#
#   sudo bash scripts/fresh_debian.sh 'bash scripts/setup.sh && build/modc explain examples/gpt.mod'
#
# Needs root, debootstrap (installed with apt when missing), unshare and network access to a
# Debian mirror (the one the host's apt uses; MODC_FRESH_MIRROR overrides it). The base system
# is built once and cached as a tarball in MODC_FRESH_CACHE (default /var/cache/modc-fresh);
# every run unpacks a new root from it and deletes that root afterwards (MODC_FRESH_KEEP=1 keeps
# it and prints where). MODC_COMMIT picks another commit than HEAD.
#
# What the fresh system gets from the host, and only this: the host's CA bundle (added to the
# fresh system's own, for hosts that reach the registries through a proxy whose authority is in
# that bundle), its PIP_* environment, /etc/resolv.conf and the network. Exit status: COMMAND's.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 'COMMAND'" >&2; exit 2; }
command=$1
[ "$(id -u)" -eq 0 ] || { echo "fresh_debian.sh: needs root (debootstrap, chroot, mounts)" >&2; exit 2; }
repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
commit=$(git -C "$repo" rev-parse --verify "${MODC_COMMIT:-HEAD}^{commit}")
suite=bookworm
include=git,sudo,ca-certificates
cache=${MODC_FRESH_CACHE:-/var/cache/modc-fresh}
base="$cache/$suite-minbase-${include//,/-}.tar"

# The Debian mirror the host's apt uses (deb822 or one-line sources), else deb.debian.org.
host_mirror() {
    { cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true; } |
        grep -o -E 'https?://[^ ]*/debian/?( |$)' | head -n 1 | tr -d ' ' || true
}
mirror=${MODC_FRESH_MIRROR:-$(host_mirror)}
mirror=${mirror:-http://deb.debian.org/debian}
mirror=${mirror%/}

command -v debootstrap >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap; }

start=$SECONDS
if [ ! -f "$base" ]; then
    echo "fresh_debian.sh: building the base system ($suite minbase + $include from $mirror)"
    mkdir -p "$cache"
    staging=$(mktemp -d "$cache/staging.XXXXXX")
    if ! debootstrap --variant=minbase --include="$include" "$suite" "$staging/root" "$mirror" >"$staging/log" 2>&1; then
        tail -n 30 "$staging/log" >&2
        rm -rf --one-file-system "$staging"
        echo "fresh_debian.sh: debootstrap failed (its log is above)" >&2
        exit 1
    fi
    # A Debian 12 system's sources: the release, its updates and its security fixes.
    cat >"$staging/root/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb ${MODC_FRESH_SECURITY:-http://deb.debian.org/debian-security} $suite-security main
EOF
    tar -C "$staging/root" -cf "$staging/base.tar" .
    mv "$staging/base.tar" "$base"  # atomic: a run that stops midway leaves no half base
    rm -rf --one-file-system "$staging"
    echo "fresh_debian.sh: base built in $((SECONDS - start)) s, cached as $base"
fi

work=$(mktemp -d /var/tmp/modc-fresh.XXXXXX)
root="$work/root"
cleanup() {
    if [ "${MODC_FRESH_KEEP:-0}" = 1 ]; then
        echo "fresh_debian.sh: kept the fresh root in $root"
    else
        # The mounts lived in the namespace that ended with COMMAND; --one-file-system guards anyway.
        rm -rf --one-file-system "$work"
    fi
}
trap cleanup EXIT
mkdir "$root"
tar -C "$root" -xf "$base"
cp /etc/resolv.conf "$root/etc/resolv.conf"
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    cp /etc/ssl/certs/ca-certificates.crt "$root/usr/local/share/ca-certificates/host-bundle.crt"
    chroot "$root" update-ca-certificates >/dev/null 2>&1
fi
git clone --quiet --no-checkout "$repo" "$root/root/modc"
git -C "$root/root/modc" checkout --quiet --detach "$commit"
git -C "$root/root/modc" remote remove origin

# The environment inside: a login's basics and the host's PIP_* settings.
environment=(HOME=/root LANG=C.UTF-8 TERM=dumb PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
while IFS= read -r name; do
    environment+=("$name=${!name}")
done < <(compgen -e | grep '^PIP_' || true)

echo "fresh_debian.sh: commit $(git -C "$repo" rev-parse --short "$commit") in a fresh $suite root ($root): $command"
status=0
unshare --mount --pid --fork --propagation private -- bash -c '
    set -e
    root=$1; shift
    mount -t proc proc "$root/proc"
    mount -t sysfs sysfs "$root/sys"
    mount --rbind /dev "$root/dev"
    mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"
    exec chroot "$root" /usr/bin/env -i "$@"
' fresh "$root" "${environment[@]}" /bin/bash -c "cd /root/modc && $command" || status=$?
echo "fresh_debian.sh: exit $status after $((SECONDS - start)) s"
exit "$status"
