#!/usr/bin/env bash
# Makes sure promtool is on PATH: the deploytest package checks the alert
# rules and the dashboard's queries with it. On Debian it installs the
# prometheus package, which has it (needs root); elsewhere it says what to
# install.
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then
  promtool --version 2>&1 | head -n 1
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-promtool: no promtool and no apt-get: install Prometheus's promtool" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-promtool: no promtool: run as root to install Debian's prometheus package, or install it yourself" >&2
  exit 1
fi
echo "install-promtool: installing Debian's prometheus package for promtool" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
# The package's post-install starts no server where there is no init
# system to run it; where there is one, it is stopped again.
apt-get install -y -qq --no-install-recommends prometheus >&2
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  systemctl stop prometheus || true
  systemctl disable prometheus >/dev/null 2>&1 || true
fi
promtool --version 2>&1 | head -n 1
