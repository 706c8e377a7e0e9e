#!/usr/bin/env bash
# Make sure a Chromium or Chrome is installed; install Debian's `chromium` package when none is found.
set -euo pipefail

if [ -n "${HARVESTKIT_BROWSER:-}" ]; then
  if command -v "$HARVESTKIT_BROWSER" >/dev/null 2>&1 || [ -x "$HARVESTKIT_BROWSER" ]; then exit 0; fi
  echo "HARVESTKIT_BROWSER=$HARVESTKIT_BROWSER is not an executable" >&2
  exit 1
fi
for name in chromium chromium-browser google-chrome google-chrome-stable chrome; do
  if command -v "$name" >/dev/null 2>&1; then exit 0; fi
done

"$(dirname "$0")/apt-install.sh" chromium "Chromium or Chrome" "(or set HARVESTKIT_BROWSER to a browser executable)"
command -v chromium >/dev/null
