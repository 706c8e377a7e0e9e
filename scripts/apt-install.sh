#!/usr/bin/env bash
# Install a Debian package the project needs: apt-install.sh PACKAGE WHAT [HINT]
# (as root, or with password-less sudo; otherwise print the command to run and fail).
# WHAT names it in messages; HINT is an extra line for when it cannot be installed.
set -euo pipefail
package=$1 what=$2 hint=${3:-}

install_cmd="apt-get install -y --no-install-recommends $package"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "No $what found and this is not a Debian-like system: install $what." >&2
  [ -z "$hint" ] || echo "$hint" >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo="sudo"
else
  echo "No $what found. Install it with:  sudo $install_cmd" >&2
  [ -z "$hint" ] || echo "$hint" >&2
  exit 1
fi
echo "Installing $what from Debian's package '$package'..." >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo $install_cmd >/dev/null
