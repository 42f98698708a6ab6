#!/usr/bin/env bash
# Builds the local control plane (credsmith-cluster, which is also kubectl; `serve`
# runs the kwok built next to it for simulated nodes) and the tools the tests run
# (helm, verify-go, toxiproxy, kstatus, promtool, hydra) into $CREDSMITH_CACHE/bin, and
# skips each build when its sources and go.sum are unchanged. Go's module and build
# caches stay in their usual places outside the checkout, so a rebuild after a small
# change is quick. Prints the bin directory.
#
#   build.sh                everything (make test)
#   build.sh --dev          only the control plane and kwok (make run, `credsmith dev`)
#   build.sh --dev --hydra  and Ory Hydra (`credsmith dev --identity-provider hydra`)
#
# Runs sharing the cache (two `make test` at once, pytest workers) take turns on a
# lock in the cache directory; the second finds the binaries current and skips.
set -euo pipefail

what=all
with_hydra=no
for arg in "$@"; do
  case $arg in
    --dev) what=dev ;;
    --hydra) with_hydra=yes ;;
    *) echo "usage: $0 [--dev] [--hydra]" >&2; exit 2 ;;
  esac
done

here=$(cd "$(dirname "$0")" && pwd)
cache=${CREDSMITH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/credsmith}
bin=$cache/bin
mkdir -p "$bin"
exec 9>"$cache/build.lock"
if ! flock -n 9; then
  echo "waiting for another build in $cache" >&2
  flock 9
fi
# readonly: go.sum pins every module; a build never rewrites go.mod.
export GOFLAGS="-buildvcs=false -mod=readonly"

# The components report the Kubernetes version they are built from (kubectl version,
# /version), so that charts' kubeVersion constraints work against this cluster.
k8s_version=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' "$here/go.mod")
test -n "$k8s_version" || { echo "no k8s.io/kubernetes version in go.mod" >&2; exit 1; }
k8s_minor=$(echo "$k8s_version" | cut -d. -f2)
version_flags="-X k8s.io/component-base/version.gitVersion=$k8s_version"
version_flags+=" -X k8s.io/component-base/version.gitMajor=1"
version_flags+=" -X k8s.io/component-base/version.gitMinor=$k8s_minor"
version_flags+=" -X k8s.io/client-go/pkg/version.gitVersion=$k8s_version"

stamp_of() { # the hash of a module's sources, the build flags and the toolchain
  (cd "$1" && go version && echo "$2" && cat go.mod go.sum &&
    find . -maxdepth 1 -name '*.go' -print0 | sort -z | xargs -0r cat) | sha256sum | cut -c1-32
}

build() { # build NAME MODULE_DIR PACKAGE LDFLAGS [TAGS]  (CGO_ENABLED from the caller)
  local name=$1 dir=$2 pkg=$3 ldflags=$4 tags=${5:-} stamp
  # Tags and cgo join the stamp only when given (the others' stamps stay as they were).
  stamp=$(stamp_of "$dir" "$ldflags${tags:+ tags=$tags cgo=${CGO_ENABLED:-}}")
  if [[ -x $bin/$name && -f $bin/$name.stamp && $(cat "$bin/$name.stamp") == "$stamp" ]]; then
    echo "$name: up to date" >&2
    return
  fi
  echo "$name: building (a cold build takes many minutes)" >&2
  local start=$SECONDS
  # Names of this process only, renamed into place: a reader never sees half a file.
  (cd "$dir" && go build -trimpath -tags="$tags" -ldflags="-s -w $ldflags" -o "$bin/$name.tmp.$$" "$pkg")
  mv "$bin/$name.tmp.$$" "$bin/$name"
  echo "$stamp" >"$bin/$name.stamp.tmp.$$"
  mv "$bin/$name.stamp.tmp.$$" "$bin/$name.stamp"
  echo "$name: built in $((SECONDS - start))s, $(du -h "$bin/$name" | cut -f1)" >&2
}

# What `credsmith dev` runs: the control plane (also kubectl) and kwok with its stages.
build credsmith-cluster "$here" . "$version_flags"
# Simulated nodes (pods Running and Ready without containers); `serve` runs it.
build kwok "$here/kwok" sigs.k8s.io/kwok/cmd/kwok ""
# Its stages (kwok has no built-in defaults), from the same pinned module: kwokctl's
# defaults, nodes Ready and heartbeating, pods Running and Ready, Job pods completed.
kwok_module=$(cd "$here/kwok" && go mod download sigs.k8s.io/kwok &&
  go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
kwok_stages=$kwok_module/kustomize/stage
for stage in node/fast/node-initialize node/heartbeat/node-heartbeat pod/fast/pod-ready \
  pod/fast/pod-complete pod/fast/pod-delete; do
  echo "---"
  cat "$kwok_stages/$stage.yaml"
done >"$bin/kwok-stages.yaml.tmp.$$"
mv "$bin/kwok-stages.yaml.tmp.$$" "$bin/kwok-stages.yaml"
ln -sfn credsmith-cluster "$bin/kubectl.tmp.$$"
mv -T "$bin/kubectl.tmp.$$" "$bin/kubectl"

hydra() { # Ory Hydra, the identity provider of tests/providers (needs cgo: gcc, for SQLite)
  CGO_ENABLED=1 build hydra "$here/hydra" github.com/ory/hydra/v2 "" sqlite,sqlite_omit_load_extension
}

if [[ $what == all ]]; then  # the tools only the tests run
  helm_version=$(awk '$1 == "helm.sh/helm/v4" {print $2}' "$here/helm/go.mod")
  build helm "$here/helm" helm.sh/helm/v4/cmd/helm \
    "-X helm.sh/helm/v4/internal/version.version=$helm_version"
  build verify-go "$here/../verify-go" . ""  # tests/unit/verifier: hash strings checked in Go
  # The TCP fault proxy of the e2e fault tests (tests/e2e/faults.py).
  build toxiproxy-server "$here/toxiproxy" github.com/Shopify/toxiproxy/v2/cmd/server ""
  build kstatus "$here/../kstatus" . ""  # sigs.k8s.io/cli-utils' kstatus, for the e2e tests
  # promtool: checks the chart's PrometheusRule and the operator's /metrics (tests).
  build promtool "$here/promtool" github.com/prometheus/prometheus/cmd/promtool ""
fi
if [[ $what == all || $with_hydra == yes ]]; then
  hydra
fi
echo "$bin"
