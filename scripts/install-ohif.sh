#!/usr/bin/env bash
# Install the prebuilt OHIF Viewer v3 (npm package @ohif/app, pinned) for the viewer
# interoperability tests. Only its static build, package/dist/, is kept (about 200 MB):
#   scripts/install-ohif.sh            # prints the dist folder
# The cache lives outside the repository:
#   ${SMART_IMAGING_OHIF_DIR:-${XDG_CACHE_HOME:-~/.cache}/smart-imaging/ohif-$VERSION}
# Idempotent: when dist/index.html and the version marker are there, it touches no network.
# The only network use is `npm pack` against the npm registry.
set -euo pipefail

version=${OHIF_VERSION:-3.13.2}
target=${SMART_IMAGING_OHIF_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/smart-imaging/ohif-$version}
marker="$target/.installed"

if [ -f "$target/dist/index.html" ] && [ "$(cat "$marker" 2>/dev/null)" = "@ohif/app@$version" ]; then
  echo "$target/dist"
  exit 0
fi

command -v npm >/dev/null || { echo "install-ohif: npm is needed (scripts/setup.sh --test)" >&2; exit 1; }
mkdir -p "$(dirname "$target")"
work=$(mktemp -d "$(dirname "$target")/.ohif-install-XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "install-ohif: fetching @ohif/app@$version from the npm registry" >&2
tarball=$(cd "$work" && npm pack --silent --no-fund --no-audit "@ohif/app@$version" | tail -n 1)
[ -f "$work/$tarball" ] || { echo "install-ohif: npm pack gave no tarball" >&2; exit 1; }
tar -xzf "$work/$tarball" -C "$work" package/dist
[ -f "$work/package/dist/index.html" ] || { echo "install-ohif: package/dist/index.html missing" >&2; exit 1; }

# Swap in the new dist only once it is complete, so a broken run never leaves a half cache.
rm -rf "$target.old"
[ -d "$target" ] && mv "$target" "$target.old"
mkdir -p "$target"
mv "$work/package/dist" "$target/dist"
echo "@ohif/app@$version" >"$marker"
rm -rf "$target.old"
echo "$target/dist"
