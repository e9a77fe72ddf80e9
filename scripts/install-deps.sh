#!/usr/bin/env bash
# Installs everything Hearth needs to build, run and test on Debian 12.
# Idempotent: a second run installs nothing and takes about a second.
# Works as root or through sudo.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config
  # libraries (DESIGN.md, "Dependencies")
  libboost-dev nlohmann-json3-dev libsqlite3-dev libssl-dev libcurl4-openssl-dev
  libarchive-dev libspdlog-dev libfmt-dev libcli11-dev libpugixml-dev libre2-dev zlib1g-dev
  libgtest-dev libgmock-dev
  # built-in algorithms: linear algebra, XGBoost (the CLI package makes its CMake config
  # usable), RecordIO-protobuf, fast JSON for inference payloads
  libeigen3-dev libxgboost-dev xgboost libprotobuf-dev protobuf-compiler libsimdjson-dev
  # sandbox for training hosts
  bubblewrap
  # real clients for the end-to-end tests, and the Python the example scripts run on
  python3 python3-boto3 python3-pytest python3-sklearn python3-numpy python3-protobuf awscli
  # what the Python SDK (python/) uses when present, and pip to install it
  python3-pandas python3-matplotlib python3-pip
  # notebook instances: Jupyter, its kernel, and what tests drive it with
  jupyter-notebook python3-ipykernel python3-nbconvert python3-websocket
  # peers and data for bench/ (numpy on OpenBLAS, not the reference BLAS)
  python3-xgboost liblinear-tools libopenblas0-pthread dataset-fashion-mnist python3-optuna
  # HTTP load generator and the serving peers for bench/invoke_latency.py
  wrk gunicorn python3-flask nginx-light
  # tools the tests use
  curl procps strace
)

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
