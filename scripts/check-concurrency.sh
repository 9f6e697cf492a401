#!/usr/bin/env bash
# Model checks of the concurrency code, run by .ci/run:
# - loom explores every interleaving of the FPSG block scheduler (two workers on a 2 x 2
#   grid: exclusive row- and column-blocks, every block once, no deadlock) and of two
#   replica merges into one shared weight (no merged update lost);
# - miri runs the unit tests of the parameter stores, the mf kernels and scheduler, the
#   line splitter, the metrics and the atomic output files under its checker of undefined
#   behaviour (out-of-bounds or misaligned accesses, data races, invalid values).
# Installs the nightly toolchain's miri component when missing. Each part is timed.
set -euo pipefail
cd "$(dirname "$0")/.."

t0=$SECONDS
echo "== loom (RUSTFLAGS=--cfg loom, target/loom)"
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
  cargo test --lib --release --no-default-features -- loom_ --test-threads 1
echo "== loom: $((SECONDS - t0)) s"

t0=$SECONDS
if ! cargo +nightly miri --version >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal --component miri,rust-src ||
    rustup component add --toolchain nightly miri rust-src
fi
echo "== miri (target/miri)"
MIRIFLAGS="-Zmiri-disable-isolation" CARGO_TARGET_DIR=target/miri \
  cargo +nightly miri test --lib --no-default-features -- \
  params:: train::kernel:: mf::store:: mf::kernel:: mf::blocks:: data::lines:: metrics:: \
  atomic::tests::two
echo "== miri: $((SECONDS - t0)) s"
