# Everything installs and starts itself: `make demo`, `make test`, `make ui`, `make clean`.
VENV := .venv
# The demo's database password: generated once, kept out of the repository, handed to
# MariaDB and to Dagster through the environment only (never on a command line).
DB_PASSWORD := .demo/db-password
WITH_DB_PASSWORD = FINTECH_RELEASE_DB_PASSWORD="$$(cat $(DB_PASSWORD))"

.PHONY: bootstrap demo test lint bench ui ui-check clean demo-services

bootstrap:
	bash scripts/bootstrap.sh

demo-services: bootstrap
	mkdir -p .demo
	[ -s $(DB_PASSWORD) ] || (umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=' > $(DB_PASSWORD))
	bash scripts/start-registry.sh
	$(WITH_DB_PASSWORD) bash scripts/start-mariadb.sh

demo: demo-services
	$(WITH_DB_PASSWORD) $(VENV)/bin/fintech-release demo

test: bootstrap lint
	$(VENV)/bin/python -m pytest fintech_release_tests

# Before the suite, so a lint or type error fails in seconds: ruff (lint, import order) on the code, its tests and
# benchmarks, mypy on fintech_release. Both read their settings from pyproject.toml.
lint: bootstrap
	$(VENV)/bin/ruff check fintech_release fintech_release_tests benchmarks
	$(VENV)/bin/mypy

# Figures, not checks: prints a table and writes benchmarks/results.json (see benchmarks/README.md).
bench: bootstrap
	$(VENV)/bin/python -m benchmarks

# `dagster dev` is "superseded" by `dg dev`, which this project does not install: the warning is not shown.
ui: demo-services
	DAGSTER_HOME=$(CURDIR)/.dagster_home $(VENV)/bin/python -c \
		'from fintech_release.cli.instance import dagster_home; dagster_home()'
	$(WITH_DB_PASSWORD) DAGSTER_HOME=$(CURDIR)/.dagster_home PYTHONWARNINGS='ignore:Function `dev_command` is superseded' \
		$(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

ui-check: demo-services
	bash scripts/ui-check.sh

clean:
	[ ! -s $(DB_PASSWORD) ] || $(WITH_DB_PASSWORD) $(VENV)/bin/fintech-release teardown --all
	bash scripts/stop-demo.sh
	rm -rf .demo .dagster_home
