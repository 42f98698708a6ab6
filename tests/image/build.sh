#!/usr/bin/env bash
# Builds the operator image from the repository's Dockerfile without a Docker engine:
# Debian's buildah, chroot isolation. Prints the image name on stdout.
#
# No registry serves python:3.11-slim here, so the Dockerfile's PYTHON_IMAGE is a local
# base made by debootstrap from Debian packages (the release this machine runs, with
# python3, python3-venv and python-is-python3 for the `python` name). Elsewhere the
# Dockerfile builds unchanged from the official base.
#
# Both images carry a label with the hash of what they are built from, and each build
# is skipped when that hash is unchanged: the base's on the release, mirror and package
# list; the operator image's on the base, the Dockerfile and the build context.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
image=${CREDSMITH_IMAGE:-localhost/credsmith:dev}
suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
mirror=$(awk '$1 == "URIs:" {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
packages=python3,python3-venv,python-is-python3
base=localhost/credsmith-python:$suite
label=io.credsmith.build-stamp

stamp_label() { # the build stamp of an image, empty when it does not exist
  buildah inspect --type image --format "{{index .OCIv1.Config.Labels \"$label\"}}" "$1" \
    2>/dev/null || true
}

log() { echo "$*" >&2; }

# ---- the base: debootstrap into a scratch container ----------------------------------
base_stamp=$(printf '%s\n' 2 "$suite" "$mirror" "$packages" | sha256sum | cut -c1-32)
if [[ $(stamp_label "$base") == "$base_stamp" ]]; then
  log "$base: up to date"
else
  log "$base: debootstrap $suite ($packages)"
  start=$SECONDS
  rootfs=$(mktemp -d /var/tmp/credsmith-rootfs.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >&2
  # What an image needs from a root filesystem, not what a booted system does.
  # and, as Debian's slim images do, no manuals or translations (copyright files stay).
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*
  rm -rf "$rootfs"/usr/share/{man,info}/*
  find "$rootfs"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  find "$rootfs"/usr/share/doc -type f ! -name copyright -delete
  container=$(buildah from scratch)
  mnt=$(buildah mount "$container")
  cp -a "$rootfs"/. "$mnt"/
  buildah umount "$container" >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --cmd python3 --label "$label=$base_stamp" "$container"
  previous=$(buildah inspect --type image --format '{{.FromImageID}}' "$base" 2>/dev/null || true)
  buildah commit --rm --quiet "$container" "$base" >/dev/null
  [[ -z $previous ]] || buildah rmi "$previous" >/dev/null 2>&1 || true  # still used: kept
  rm -rf "$rootfs"
  trap - EXIT
  log "$base: built in $((SECONDS - start))s"
fi

# ---- the operator image: the Dockerfile on that base ----------------------------------
# The context is what .dockerignore lets through: pyproject.toml, README.md, operator/.
context_hash=$(cd "$root" && find pyproject.toml README.md operator -type f \
  ! -path '*/__pycache__/*' ! -name '*.py[cod]' ! -path '*.egg-info/*' -print0 |
  sort -z | xargs -0 sha256sum | sha256sum | cut -c1-32)
base_id=$(buildah inspect --type image --format '{{.FromImageID}}' "$base")
image_stamp=$(cat "$root/Dockerfile" "$root/.dockerignore" <(echo "$base_id $context_hash") |
  sha256sum | cut -c1-32)
if [[ $(stamp_label "$image") == "$image_stamp" ]]; then
  log "$image: up to date"
else
  log "$image: building from the Dockerfile on $base"
  start=$SECONDS
  # pip in the builder trusts what this machine trusts (a TLS-inspecting egress proxy's
  # CA may be in the host's bundle, not in Debian's): the host's bundle is mounted over
  # the base's, during RUN steps only, never into a layer. Debian's pip reads that file.
  bundle=/etc/ssl/certs/ca-certificates.crt
  trust=()
  [[ -f $bundle ]] && trust=(--volume "$bundle:$bundle:ro")
  previous=$(buildah inspect --type image --format '{{.FromImageID}}' "$image" 2>/dev/null || true)
  buildah bud --isolation chroot --pull-never --quiet "${trust[@]}" \
    --build-arg "PYTHON_IMAGE=$base" --label "$label=$image_stamp" \
    --tag "$image" "$root" >&2
  [[ -z $previous ]] || buildah rmi "$previous" >/dev/null 2>&1 || true
  log "$image: built in $((SECONDS - start))s"
fi
log "$image: $(buildah images --format '{{.Size}}' "$image" | head -n1)"
echo "$image"
