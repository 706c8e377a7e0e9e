#!/usr/bin/env bash
# Make sure a redis-server is installed (the Redis store's tests start their own on loopback
# ports); install Debian's `redis-server` package when none is found.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then exit 0; fi
"$(dirname "$0")/apt-install.sh" redis-server "redis-server" "(Valkey's valkey-server works too, linked as redis-server.)"
command -v redis-server >/dev/null
