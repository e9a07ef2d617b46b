#!/usr/bin/env bash
# Every test of the project, on a fresh machine: the Rust suite (all
# features) against a throwaway PostgreSQL server this script starts and
# stops, then the Node.js driver's build, lints and tests. Servers and npm
# packages come from the registries; nothing is assumed installed.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/with-postgres.sh cargo test --all-features
scripts/test-node.sh
