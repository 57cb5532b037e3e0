#!/usr/bin/env bash
# Prepares .gpu-deps/: the Debian packages hone builds against (header-only CLI11 and nlohmann-json,
# GoogleTest, zlib) unpacked into a folder that travels to the lent GPU machine, which has torch,
# CUDA, CMake and ninja but no package registry. Run here, once; `make gpu-test` uses it there.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.gpu-deps
packages=(libcli11-dev nlohmann-json3-dev libgtest-dev libgmock-dev googletest zlib1g-dev zlib1g)
if [[ -f $out/.done ]]; then echo "[gpu-deps] $out ready"; exit 0; fi
rm -rf "$out" && mkdir -p "$out/debs"
(cd "$out/debs" && apt-get download "${packages[@]}" >/dev/null)
for deb in "$out"/debs/*.deb; do dpkg -x "$deb" "$out"; done
rm -rf "$out/debs" "$out/usr/share/doc" "$out/usr/src"
touch "$out/.done"
echo "[gpu-deps] unpacked ${packages[*]} into $out ($(du -sh "$out" | cut -f1))"
