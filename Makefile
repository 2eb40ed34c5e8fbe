# Everything installs and starts itself: `make demo`, `make test`, `make ui`.
VENV := .venv

.PHONY: bootstrap demo test ui clean

bootstrap:
	bash scripts/bootstrap.sh

demo: bootstrap
	bash scripts/start-registry.sh
	$(VENV)/bin/fintech-release demo

test: bootstrap
	$(VENV)/bin/python -m pytest fintech_release_tests

ui: bootstrap
	mkdir -p .dagster_home
	DAGSTER_HOME=$(CURDIR)/.dagster_home $(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

clean:
	bash scripts/stop-demo.sh
	rm -rf .demo .dagster_home
