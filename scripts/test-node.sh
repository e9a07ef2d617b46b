#!/usr/bin/env bash
# The Node.js driver (node/): install its npm dependencies (with no engine
# warning on this Node), build the addon in release mode, lint, and run its
# tests. Any failure fails the script; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/../node"

# The package claims node >=20 and CI runs the lowest; a dependency whose
# `engines` leaves this Node out fails the run instead of warning.
ci_log=$(npm ci --no-audit --no-fund 2>&1) || { printf '%s\n' "$ci_log"; exit 1; }
printf '%s\n' "$ci_log"
if grep -q EBADENGINE <<<"$ci_log"; then
  echo "test-node.sh: npm ci warned EBADENGINE on Node $(node --version): a dependency does not support it" >&2
  exit 1
fi
cargo fmt --check
cargo clippy --all-targets -- -D warnings
npm run build
npm test
