# The two commands: `make demo` runs a whole month on simulated data; `make test` runs the suite.
.PHONY: demo test bench tools fmt lint clean-demo chaos rules

tools:
	bash scripts/tools.sh

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

bench:
	bash scripts/bench.sh

# The alert rules' unit tests (promtool) and the Prometheus/Grafana files alone.
rules:
	bash scripts/rules.sh

# A whole month through the real processes while they are killed and restarted; prints checks.
chaos:
	bash scripts/chaos.sh

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

clean-demo:
	bash scripts/demo.sh stop
