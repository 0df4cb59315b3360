# portmap.natpmp: `make demo` runs the demo, `make test` the whole test suite.
# Both install what they need first (Debian packages as root, then a virtualenv with pinned tools).
# Long runs, not part of `make test`: `make soak` (renewal by the timer job and by the watch across reboots,
# NAT-PMP, PCP and UPnP IGD in sealed network namespaces, as root; `make soak SOAK_ARGS="--lifetime 60 --lifetimes 10"`
# for 60 s leases over 10 lifetimes, about 10 minutes), `make fuzz` (450,000 cases, and 300 sequences per protocol
# of the fleet state machine),
# `make bench` (figures against the peers, the watch's idle CPU and memory, written to docs/performance.md),
# `make bench-compare OLD=<rev> NEW=<rev> ROUNDS=<n>` (two revisions' latency against the peers and start-up,
# side by side; OLD defaults to HEAD~, NEW to the working tree, ROUNDS to 6: about 2 minutes, up to 5 on a busy machine).
# `make ee` writes the execution environment's build context to build/ee/context/.

SHELL := /bin/bash
PYTHON ?= /usr/bin/python3
VENV := .venv
REQUIREMENTS := requirements-test.txt
STAMP := $(VENV)/.installed-$(shell sha256sum $(REQUIREMENTS) 2>/dev/null | cut -c1-16)

.PHONY: demo test deps venv py38 unit pythons integration molecule sanity matrix lint docs changelog ee soak fuzz bench bench-compare clean

demo: venv
	$(VENV)/bin/python demo/demo.py

test:
	scripts/stages.sh

deps:
	scripts/install-deps.sh

venv: deps $(STAMP)

$(STAMP): $(REQUIREMENTS)
	rm -f $(VENV)/.installed-*
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check -q -r $(REQUIREMENTS)
	touch $@

py38: venv
	scripts/check-py38.sh

unit: venv
	$(VENV)/bin/python -m pytest tests/unit

pythons: venv
	scripts/pythons.sh

# The integration tests mostly wait (on timers, leases, gateways' restarts): four pytest-xdist workers
# on two cores (tests that share a fixed port take turns through a lock of their own).
INTEGRATION_WORKERS ?= 4

integration: venv
	$(VENV)/bin/python -m pytest -n $(INTEGRATION_WORKERS) --durations=30 tests/integration

molecule: venv
	scripts/molecule.sh $(SCENARIO)

sanity: venv
	scripts/sanity.sh

matrix: venv
	scripts/matrix.sh

lint: venv
	NO_COLOR=1 PATH=$(CURDIR)/$(VENV)/bin:$$PATH ansible-lint --profile production

docs: venv
	scripts/check-docs.sh

changelog: venv
	$(VENV)/bin/antsibull-changelog lint

ee: venv
	scripts/ee.sh

bench: venv
	scripts/bench.sh

OLD ?= HEAD~
NEW ?=
ROUNDS ?=

bench-compare: venv
	scripts/bench.sh compare --old '$(OLD)' $(if $(NEW),--new '$(NEW)') $(if $(ROUNDS),--rounds $(ROUNDS))

fuzz: venv
	scripts/fuzz.sh

soak: venv
	$(VENV)/bin/python scripts/soak.py $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .venv-bench .venv-matrix .cache/ansible-test build tests/output .pytest_cache "$${PORTMAP_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/portmap-natpmp}"
