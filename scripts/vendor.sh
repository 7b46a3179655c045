#!/bin/sh
# Refresh the vendored front-end files from the npm registry (exact pins). The files are committed,
# so neither runtime nor CI needs npm; CI checks them with `sha256sum -c SHA256SUMS`.
set -eu
V="$(cd "$(dirname "$0")/.." && pwd)/app/static/vendor"
T=$(mktemp -d); cd "$T"
npm pack --silent htmx.org@2.0.11 @picocss/pico@2.1.1 swagger-ui-dist@5.35.0 chart.js@4.6.1 >/dev/null
for f in *.tgz; do mkdir "${f%.tgz}"; tar -xzf "$f" -C "${f%.tgz}"; done
mkdir -p "$V"
cp htmx.org-2.0.11/package/dist/htmx.min.js "$V/htmx-2.0.11.min.js"
cp picocss-pico-2.1.1/package/css/pico.min.css "$V/pico-2.1.1.min.css"
cp htmx.org-2.0.11/package/LICENSE "$V/LICENSE.htmx"
cp picocss-pico-2.1.1/package/LICENSE.md "$V/LICENSE.pico.md"
# Swagger UI: the accounting API's docs page (/api/accounting/v1/docs).
cp swagger-ui-dist-5.35.0/package/swagger-ui-bundle.js "$V/swagger-ui-bundle-5.35.0.js"
cp swagger-ui-dist-5.35.0/package/swagger-ui.css "$V/swagger-ui-5.35.0.css"
cp swagger-ui-dist-5.35.0/package/LICENSE "$V/LICENSE.swagger-ui"
cp swagger-ui-dist-5.35.0/package/swagger-ui-bundle.js.LICENSE.txt "$V/LICENSE.swagger-ui-bundle.txt"
# Chart.js: the per-key usage chart on Integrations > Accounting API.
cp chart.js-4.6.1/package/dist/chart.umd.min.js "$V/chart-4.6.1.umd.min.js"
cp chart.js-4.6.1/package/LICENSE.md "$V/LICENSE.chartjs.md"
(cd "$V" && sha256sum ./*.js ./*.css > SHA256SUMS)
rm -rf "$T"
