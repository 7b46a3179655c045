#!/bin/sh
# Refresh the vendored front-end files from the npm registry (exact pins). The files are committed,
# so neither runtime nor CI needs npm; CI checks them with `sha256sum -c SHA256SUMS`.
set -eu
V="$(cd "$(dirname "$0")/.." && pwd)/app/static/vendor"
T=$(mktemp -d); cd "$T"
npm pack --silent htmx.org@2.0.11 @picocss/pico@2.1.1 >/dev/null
for f in *.tgz; do mkdir "${f%.tgz}"; tar -xzf "$f" -C "${f%.tgz}"; done
mkdir -p "$V"
cp htmx.org-2.0.11/package/dist/htmx.min.js "$V/htmx-2.0.11.min.js"
cp picocss-pico-2.1.1/package/css/pico.min.css "$V/pico-2.1.1.min.css"
cp htmx.org-2.0.11/package/LICENSE "$V/LICENSE.htmx"
cp picocss-pico-2.1.1/package/LICENSE.md "$V/LICENSE.pico.md"
(cd "$V" && sha256sum ./*.js ./*.css > SHA256SUMS)
rm -rf "$T"
