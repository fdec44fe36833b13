# The README's two commands: `make demo` and `make test`. Both install what
# the machine lacks first.

CARGO ?= cargo
# Line tables are enough for backtraces and keep 2-core builds fast.
export CARGO_PROFILE_DEV_DEBUG ?= line-tables-only

.PHONY: deps build demo test fmt lint unit fuzz bench

deps:
	@scripts/install-deps.sh

build: deps
	$(CARGO) build --workspace --bins

# The lab of examples/lab with `ixgate run` in both ixgate nodes, its
# story told step by step; then the configuration check.
demo: build
	./target/debug/ixgate-testbed demo testbed/topologies/lab.toml
	@echo
	@echo "== The configuration behind it: what each node announces to whom"
	./target/debug/ixgate check --config examples/lab
	@echo
	@echo "== A broken configuration is refused whole, every error with its place"
	@./target/debug/ixgate check --config examples/invalid/several-errors; \
	  echo "(exit status $$?: 0 valid, 1 invalid, 2 unreadable)"

fmt: deps
	$(CARGO) fmt --all --check

lint: deps
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The labs run the workspace's binaries (ixgate, ixgate-testbed) from the
# target directory: build them before the tests that start labs.
unit: deps
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace

# A bounded fuzz run of BGP message decoding (cargo-fuzz needs nightly
# flags for the sanitizer: RUSTC_BOOTSTRAP, see DESIGN.md).
fuzz: deps
	cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run decode corpus/decode -- -max_total_time=30 -rss_limit_mb=2048

test: fmt lint unit fuzz

# Benchmarks print figures side by side with their yardstick.
bench: deps
	$(CARGO) build --release --workspace --bins
	$(CARGO) bench --bench bgp_propagation
	$(CARGO) bench --bench firewall
	$(CARGO) bench --bench proxy
	$(CARGO) bench --bench mitigation
