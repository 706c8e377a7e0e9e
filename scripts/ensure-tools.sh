#!/usr/bin/env bash
# Make sure the tools the sandbox's challenge and the headful tests need are installed, from Debian:
#   node  -> nodejs + npm (npm pack fetches the pinned bot detectors)
#   xvfb  -> xvfb + xauth (a virtual display for the headful tests and `doctor --browser`)
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
"$(dirname "$0")/apt-install.sh" "${packages[*]}" "${packages[*]}"
