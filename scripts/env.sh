# Sourced by the scripts: one cargo target directory outside the clone and one profile
# (release) for the server, the tests and the benchmarks, so DuckDB's bundled C++ compiles
# once per machine. See docs/decisions/0001-one-cargo-profile.md.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/heartbeat/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
