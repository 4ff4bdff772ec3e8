#!/usr/bin/env bash
# Runs a command of this checkout inside a Debian 13 (trixie) root: glibc 2.41 and Python 3.13, so
# ./gan there takes the TFX 1.21 line. `./gan test` calls it to check that line on machines whose
# own glibc is too old for it (it needs root: debootstrap, chroot and mount).
#
#   tests/debian13_root.sh './gan run --out /tmp/main-job'     # any shell command, run in the copy
#
# The root is made once with `debootstrap --variant=minbase` (about 1-3 minutes, 810 MB, from
# Debian's mirror) and cached in $GAN_DEBIAN_ROOT (default /var/cache/tfx-gan/debian13); the copy
# of the checkout and its .venv live inside it, so later runs re-install nothing unless uv.lock
# changed. Each run copies the checkout's files afresh (tracked and untracked, not ignored), mounts
# /proc, /dev and a /dev/shm for the command, and unmounts them when it ends, however it ends.
# To clean up: rm -rf "$GAN_DEBIAN_ROOT" "$GAN_DEBIAN_ROOT.lock" (nothing is mounted there between runs).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROOTFS="${GAN_DEBIAN_ROOT:-/var/cache/tfx-gan/debian13}"
READY="$ROOTFS/.tfx-gan-root-ready"
# What the root holds; a change here makes the next run build a new root.
PACKAGES="python3,python3-venv,python3-dev,build-essential,ca-certificates,git,procps"
COPY=/src/tfx-gan

[ $# -eq 1 ] || { echo "usage: $0 'COMMAND'   (run in a copy of the checkout inside the Debian 13 root)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "error: the Debian 13 root needs root (debootstrap, chroot, mount); run as root" >&2; exit 2; }

make_root() {
  mkdir -p "$(dirname "$ROOTFS")"
  # One run at a time in the root (held until this script exits): a second run waits, then finds
  # the root ready.
  exec 7>>"$ROOTFS.lock"
  flock -n 7 || { echo "[debian13] waiting for another run in $ROOTFS to end" >&2; flock 7; }
  [ "$(cat "$READY" 2>/dev/null)" = "$PACKAGES" ] && return 0
  if ! command -v debootstrap >/dev/null; then
    echo "[debian13] installing debootstrap" >&2
    apt-get install -y -q debootstrap >&2 || { apt-get update -q >&2 && apt-get install -y -q debootstrap >&2; }
  fi
  local partial="$ROOTFS.partial"
  rm -rf "$partial" "$ROOTFS"
  echo "[debian13] debootstrap trixie into $ROOTFS (once; about 1-3 minutes)" >&2
  debootstrap --variant=minbase --include="$PACKAGES" trixie "$partial" >&2
  echo "$PACKAGES" > "$partial/.tfx-gan-root-ready"
  mv "$partial" "$ROOTFS"
}

MOUNTED=()
unmount_all() {
  local i
  for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
    umount -l "${MOUNTED[$i]}" 2>/dev/null || true
  done
}
trap unmount_all EXIT
trap 'exit 130' INT; trap 'exit 143' TERM; trap 'exit 129' HUP  # so that EXIT runs: nothing stays mounted

mount_into_root() {  # mount_into_root <mount args...> <target inside the root>
  local target="$ROOTFS${*: -1}"
  mkdir -p "$target"
  mount "${@:1:$#-1}" "$target"
  MOUNTED+=("$target")
}

make_root
echo "[debian13] $(chroot "$ROOTFS" sh -c 'ldd --version | head -1; python3 --version' | tr '\n' ' ')" >&2

# The registry the host reaches is reached the same way from inside: its DNS and CA bundle.
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
for bundle in "${SSL_CERT_FILE:-}" /etc/ssl/certs/ca-certificates.crt; do
  [ -n "$bundle" ] && [ -f "$bundle" ] && { cp "$bundle" "$ROOTFS/etc/ssl/certs/ca-certificates.crt"; break; }
done

# A fresh copy of the checkout's files; the copy's .venv and .cache are kept (they are the cache).
mkdir -p "$ROOTFS$COPY"
find "$ROOTFS$COPY" -mindepth 1 -maxdepth 1 ! -name .venv ! -name .cache -exec rm -rf {} +
# (--ignore-failed-read: a tracked file deleted in the work tree is left out, not an error)
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
   | tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -xf - -C "$ROOTFS$COPY"
# A git repository of its own, as a checkout is (tests/test_package.py builds the wheel from it).
git -C "$ROOTFS$COPY" init -q && git -C "$ROOTFS$COPY" add -A \
  && git -C "$ROOTFS$COPY" -c user.name=tfx-gan -c user.email=tfx-gan@localhost commit -qm "the checkout's files"

mount_into_root -t proc proc /proc
mount_into_root --bind /dev /dev
mount_into_root -t tmpfs -o size=4g tmpfs /dev/shm

# A clean environment: the host's Python settings (pyenv, PYTHONPATH, its venv) must not leak in;
# proxy and index settings must.
env_args=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
          TMPDIR=/tmp SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt PIP_CERT=/etc/ssl/certs/ca-certificates.crt
          PIP_DISABLE_PIP_VERSION_CHECK=1)
for name in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY PIP_INDEX_URL UV_INDEX_URL \
            UV_DEFAULT_INDEX GAN_TFX_LINE TF_CPP_MIN_LOG_LEVEL; do
  [ -n "${!name:-}" ] && env_args+=("$name=${!name}")
done
chroot "$ROOTFS" /usr/bin/env -i "${env_args[@]}" bash -c "cd $COPY && $1"
