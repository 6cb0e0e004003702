# The two commands of the README; both install what is missing first (scripts/setup.sh).
.PHONY: setup bench test

setup:
	@bash scripts/setup.sh

bench: setup
	SE_OFFLINE=true NO_GCE_CHECK=true .venv/bin/bench run

test: setup
	SE_OFFLINE=true NO_GCE_CHECK=true .venv/bin/python -m pytest -q
