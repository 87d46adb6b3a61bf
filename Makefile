# Thin wrappers: the logic lives in scripts/ and the crates.
export CARGO_TARGET_DIR ?= /var/cache/skiff/target

.PHONY: up test bench build images fmt lint

up:
	scripts/up.sh

test:
	scripts/test.sh

bench:
	scripts/bench.sh

build:
	cargo build --release -p skiff

images:
	scripts/images.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
