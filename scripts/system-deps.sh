#!/usr/bin/env bash
# Debian packages the test suite drives for real: Chromium (Playwright's browser), Orthanc with
# DICOMweb (a real PACS), poppler-utils (pdftotext/pdftoppm). Installs only what is missing.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v Orthanc >/dev/null 2>&1 || need+=(orthanc)
[ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || need+=(orthanc-dicomweb)
command -v pdftotext >/dev/null 2>&1 || need+=(poppler-utils)
fc-list 2>/dev/null | grep -qi dejavu || need+=(fonts-dejavu-core)
# WeasyPrint (the committee pack's PDF) loads Pango, PangoFT2 and HarfBuzz (subset: font embedding)
for lib in libpango-1.0-0:libpango-1.0.so.0 libpangoft2-1.0-0:libpangoft2-1.0.so.0 \
           libharfbuzz0b:libharfbuzz.so.0 libharfbuzz-subset0:libharfbuzz-subset.so.0; do
  ldconfig -p 2>/dev/null | grep "${lib#*:}" >/dev/null || need+=("${lib%%:*}")  # no -q: SIGPIPE
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages: ${need[*]} (run as root, or install them: apt-get install ${need[*]})" >&2
    exit 1
  fi
  echo "installing Debian packages: ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The Debian package starts an Orthanc service on install; the tests run their own instance.
if command -v service >/dev/null 2>&1 && pgrep -x Orthanc >/dev/null 2>&1; then
  service orthanc stop >/dev/null 2>&1 || true
fi
exit 0
