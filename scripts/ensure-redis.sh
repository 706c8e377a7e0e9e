#!/usr/bin/env bash
# Make sure a redis-server is installed (the Redis store's tests start their own on a loopback
# port); install Debian's `redis-server` package when none is found. Like ensure-browser.sh.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then exit 0; fi

install_cmd="apt-get install -y --no-install-recommends redis-server"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "No redis-server found and this is not a Debian-like system: install Redis (or Valkey's" >&2
  echo "redis-server) so that 'redis-server' is on PATH." >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo="sudo"
else
  echo "No redis-server found. Install it with:  sudo $install_cmd" >&2
  exit 1
fi
echo "Installing Redis from Debian's package 'redis-server'..." >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo $install_cmd >/dev/null
command -v redis-server >/dev/null
