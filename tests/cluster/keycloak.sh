#!/usr/bin/env bash
# Installs Keycloak for the identity-provider tests (tests/providers/keycloak.py): the
# Quarkus distribution from Maven Central (mvn keeps the zip in ~/.m2), unzipped into
# $CREDSMITH_CACHE/keycloak-VERSION, outside the checkout. Skipped when that directory is
# complete. Prints the directory. Needs mvn to download and java (17+) to run (.ci/run
# installs both); without them it says so and installs nothing (the tests then skip).
#
# Runs sharing the cache take turns on a lock of their own; the unzip goes to a directory
# of this process renamed into place, so a reader never sees half an installation.
set -euo pipefail

version=26.5.6
artifact=org.keycloak:keycloak-quarkus-dist:$version:zip
cache=${CREDSMITH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/credsmith}
dest=$cache/keycloak-$version
mkdir -p "$cache"
exec 8>"$cache/keycloak.lock"
if ! flock -n 8; then
  echo "waiting for another Keycloak install in $cache" >&2
  flock 8
fi

if [[ -x $dest/bin/kc.sh && -f $dest/.installed ]]; then
  echo "keycloak $version: up to date" >&2
  echo "$dest"
  exit 0
fi
for tool in java mvn; do
  if ! command -v "$tool" >/dev/null; then
    echo "keycloak $version: not installed, $tool is missing (apt-get install openjdk-17-jre-headless maven)" >&2
    exit 0
  fi
done

start=$SECONDS
repo=${MAVEN_REPO_LOCAL:-$HOME/.m2/repository}
zip=$repo/org/keycloak/keycloak-quarkus-dist/$version/keycloak-quarkus-dist-$version.zip
if [[ ! -f $zip ]]; then
  echo "keycloak $version: downloading (165 MB)" >&2
  mvn -q dependency:get -Dartifact="$artifact" -Dtransitive=false -Dmaven.repo.local="$repo"
fi
echo "keycloak $version: unzipping" >&2
tmp=$cache/keycloak-$version.tmp.$$
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
# Python's zipfile rather than unzip (not on every machine), keeping the files' modes
# (bin/kc.sh is executable). The zip holds one top directory, keycloak-VERSION.
python3 - "$zip" "$tmp" <<'PY'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as archive:
    for info in archive.infolist():
        path = archive.extract(info, sys.argv[2])
        mode = info.external_attr >> 16 & 0o777
        if mode and not info.is_dir():
            os.chmod(path, mode)
PY
touch "$tmp/keycloak-$version/.installed"
rm -rf "$dest"
mv "$tmp/keycloak-$version" "$dest"
echo "keycloak $version: installed in $((SECONDS - start))s, $(du -sh "$dest" | cut -f1)" >&2
echo "$dest"
