#!/usr/bin/env bash
# Set up everything smart-imaging needs on a Debian/Ubuntu machine: system packages (only those
# missing), a virtual environment in .venv with the project and its test tools.
#   scripts/setup.sh          # for the demo: Python only
#   scripts/setup.sh --test   # for the test suite: plus Orthanc + DICOMweb plugin, Node.js, Chromium
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-}
packages=()
if [ "$mode" = "--test" ]; then
  [ -x /usr/sbin/Orthanc ] || packages+=(orthanc)
  [ -f /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || packages+=(orthanc-dicomweb)
  command -v node >/dev/null || packages+=(nodejs)
  command -v npm >/dev/null || packages+=(npm)
  command -v chromium >/dev/null || packages+=(chromium)
  # nginx and Redis run as children of the tests and benchmarks, on their own ports
  [ -x /usr/sbin/nginx ] || packages+=(nginx)
  command -v redis-server >/dev/null || packages+=(redis-server)
fi
python3 -c 'import venv, ensurepip' 2>/dev/null || packages+=(python3-venv)

if [ ${#packages[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${packages[*]}" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  # the system services these packages may start are not used: stop them where systemd runs
  for service in nginx redis-server; do
    case " ${packages[*]} " in *" $service "*)
      if command -v systemctl >/dev/null && systemctl is-active --quiet "$service" 2>/dev/null; then
        $sudo systemctl disable --now "$service" >/dev/null 2>&1 || true
      fi ;;
    esac
  done
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if [ "$mode" = "--test" ]; then
  .venv/bin/python -m pip install -q -e ".[test]"
  scripts/install-ohif.sh >/dev/null  # the pinned OHIF v3 build for viewer interoperability tests (cached)
else
  .venv/bin/python -m pip install -q -e .
fi
