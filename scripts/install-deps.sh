#!/usr/bin/env bash
# Installs the Debian 12 packages belay needs to build, test and demo.
# Idempotent: installs only what is missing. Needs root (or sudo) for apt-get.
set -euo pipefail

packages=(
  build-essential
  postgresql-15
  postgresql-server-dev-15
  postgresql-15-cron
  postgresql-15-pgtap
  libtap-parser-sourcehandler-pgtap-perl
  libpqxx-dev
  nlohmann-json3-dev
  libgtest-dev
  pkg-config
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "belay: installing ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# Keep the Debian package from creating and starting a system cluster on 5432.
if [[ ! -e /etc/postgresql-common/createcluster.conf ]] || ! grep -q '^create_main_cluster *= *false' /etc/postgresql-common/createcluster.conf; then
  $sudo mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" | $sudo tee /etc/postgresql-common/createcluster.d/belay-no-main.conf >/dev/null
fi
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
