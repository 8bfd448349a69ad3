#!/usr/bin/env bash
# Installs every Debian 12 package Triad needs to build, test and run. Idempotent:
# packages already present are skipped, so re-running costs one dpkg query.
#   scripts/setup.sh [--fuzz]   (--fuzz adds clang and libFuzzer for scripts/fuzz.sh)
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config ccache git
  # model library
  libtorch-dev libopenblas0-openmp nlohmann-json3-dev libabsl-dev
  # tokenizer (Unicode regex and normalization)
  libpcre2-dev libicu-dev libutf8proc-dev
  # RPC, metrics
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  prometheus-cpp-dev
  # tests
  libgtest-dev libgmock-dev python3 python3-grpcio python3-protobuf curl prometheus
)
if [[ ${1:-} == --fuzz ]]; then
  PACKAGES+=(clang libclang-rt-14-dev)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
