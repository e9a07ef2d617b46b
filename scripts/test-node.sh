#!/usr/bin/env bash
# The Node.js driver (node/): install its npm dependencies, build the addon
# in release mode and the CLI the interop test migrates with, lint, and run
# its tests. Any failure fails the script; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p logstore-cli   # `logstore migrate`, for the interop test
cd node
npm ci --no-audit --no-fund
cargo fmt --check
cargo clippy --all-targets -- -D warnings
npm run build
npm test
