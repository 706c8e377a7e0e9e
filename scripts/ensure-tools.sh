#!/usr/bin/env bash
# Make sure the tools the sandbox's challenge and the headful tests need are installed, from Debian:
#   node  -> nodejs + npm (npm pack fetches the pinned bot detectors)
#   xvfb  -> xvfb (a virtual display for the headful tests and `doctor --browser`)
# Usage: scripts/ensure-tools.sh node [xvfb]
set -euo pipefail

packages=()
for tool in "$@"; do
  case "$tool" in
    node) command -v npm >/dev/null 2>&1 || packages+=(nodejs npm) ;;
    xvfb) command -v Xvfb >/dev/null 2>&1 || packages+=(xvfb xauth) ;;
    *) echo "unknown tool $tool (known: node, xvfb)" >&2; exit 2 ;;
  esac
done
[ ${#packages[@]} -eq 0 ] && exit 0

install_cmd="apt-get install -y --no-install-recommends ${packages[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "Missing ${packages[*]} and this is not a Debian-like system: install them with your package manager." >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo="sudo"
else
  echo "Missing ${packages[*]}. Install them with:  sudo $install_cmd" >&2
  exit 1
fi
echo "Installing ${packages[*]} from Debian..." >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo $install_cmd >/dev/null
