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

install_cmd="apt-get install -y --no-install-recommends chromium"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "No Chromium or Chrome found and this is not a Debian-like system: install Chromium or Chrome," >&2
  echo "or set HARVESTKIT_BROWSER to a browser executable." >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo="sudo"
else
  echo "No Chromium or Chrome found. Install it with:  sudo $install_cmd" >&2
  echo "(or set HARVESTKIT_BROWSER to a browser executable)" >&2
  exit 1
fi
echo "Installing Chromium from Debian's package 'chromium'..." >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo $install_cmd >/dev/null
command -v chromium >/dev/null
