# npu.fleet developer entry points. Everything runs from the repo's own venv
# (.venv) and a local Docker engine; both are made on first use.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
PYTHON ?= python3
# Machines here keep a CPU build of torch in /opt/wheels; without it pip would
# fetch PyPI's CUDA build (several GB) for the Transformers server tests.
LOCAL_WHEELS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels)

.PHONY: help venv docker images collection demo demo-down test lint ruff sanity unit molecule changelog-lint docs-check changelog-release sanity-cores clean

help:
	@echo "make demo       set up venv + Docker engine + emulated fleet, run deploy-models.yml against inventory/demo, then fleet-status.yml"
	@echo "make demo-down  remove the demo fleet containers"
	@echo "make test       ansible-lint, changelog lint, docs check, ansible-test sanity, ruff, pytest tests/unit tests/standin_vllm, molecule test (each scenario, timed)"

$(VENV)/.installed: requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q $(LOCAL_WHEELS) -r requirements-test.txt
	touch $@

venv: $(VENV)/.installed

docker:
	@bash scripts/ensure-docker.sh

images: docker venv
	@bash scripts/build-images.sh
	@bash scripts/build-serving-images.sh

collection:
	@bash scripts/link-collection.sh

demo: venv images collection
	ansible-playbook -i inventory/demo tests/emulator/fleet.yml
	ansible-playbook -i inventory/demo tests/emulator/serving_prereqs.yml
	ansible-playbook -i inventory/demo tests/emulator/hub.yml
	ansible-playbook -i inventory/demo deploy-models.yml
	python tests/emulator/demo_requests.py npu-fleet-report/report.json
	ansible-playbook -i inventory/demo fleet-status.yml

demo-down: venv collection
	ansible-playbook -i inventory/demo tests/emulator/fleet.yml -e emulator_state=absent
	ansible-playbook -i inventory/demo tests/emulator/hub.yml -e emulator_hub_state=absent

lint: venv collection
	ansible-lint --profile production --offline

sanity: venv
	bash scripts/sanity.sh

# Settings in pyproject.toml (line length, excludes, rules).
ruff: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Test paths, pythonpath and -p no:cacheprovider: pyproject.toml.
unit: venv
	pytest -q -n auto

changelog-lint: venv
	antsibull-changelog lint

# Plugin, role and guide docs linted with antsibull-docs, the docsite built; fails on a broken reference.
docs-check: venv
	bash scripts/docs-check.sh

# Re-open the 0.2.0 release with every fragment (keep_fragments: true).
changelog-release: venv
	bash scripts/release-changelog.sh

# ansible-test sanity against each ansible-core meta/runtime.yml claims (about 4 min per core the first time).
sanity-cores: venv
	bash scripts/sanity-cores.sh

# Every scenario, timed, in two lanes at once (scripts/molecule-lanes.sh; MOLECULE_LANES=1 runs them one by one).
molecule: venv images collection
	bash scripts/molecule-lanes.sh

test: lint changelog-lint docs-check sanity ruff unit molecule

clean: demo-down
	rm -rf $(VENV) .cache
