#!/usr/bin/env bash
# Builds the local control plane (credsmith-cluster, which is also kubectl) and helm
# into $CREDSMITH_CACHE/bin, and skips each build when its sources and go.sum are
# unchanged. Go's module and build caches stay in their usual places outside the
# checkout, so a rebuild after a small change is quick. Prints the bin directory.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${CREDSMITH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/credsmith}
bin=$cache/bin
mkdir -p "$bin"
# readonly: go.sum pins every module; a build never rewrites go.mod.
export GOFLAGS="-buildvcs=false -mod=readonly"

stamp_of() { # the hash of a module's sources and of the toolchain
  (cd "$1" && go version && cat go.mod go.sum && find . -maxdepth 1 -name '*.go' -print0 | sort -z | xargs -0r cat) |
    sha256sum | cut -c1-32
}

build() { # build NAME MODULE_DIR PACKAGE
  local name=$1 dir=$2 pkg=$3 stamp
  stamp=$(stamp_of "$dir")
  if [[ -x $bin/$name && -f $bin/$name.stamp && $(cat "$bin/$name.stamp") == "$stamp" ]]; then
    echo "$name: up to date" >&2
    return
  fi
  echo "$name: building (a cold build takes many minutes)" >&2
  local start=$SECONDS
  (cd "$dir" && go build -trimpath -ldflags="-s -w" -o "$bin/$name.tmp" "$pkg")
  mv "$bin/$name.tmp" "$bin/$name"
  echo "$stamp" >"$bin/$name.stamp"
  echo "$name: built in $((SECONDS - start))s, $(du -h "$bin/$name" | cut -f1)" >&2
}

build credsmith-cluster "$here" .
build helm "$here/helm" helm.sh/helm/v4/cmd/helm
ln -sf credsmith-cluster "$bin/kubectl"
echo "$bin"
