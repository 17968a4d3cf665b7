# strata: `make demo` sets up everything and runs the user's workflow; `make test` runs the whole suite.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEBS := runc busybox-static docker.io skopeo podman docker-registry debootstrap iproute2 uidmap fuse-overlayfs passt slirp4netns netavark aardvark-dns iptables tini openssh-client chromium chromium-driver radosgw ceph-mon ceph-osd redis-server haproxy buildah wrk strace
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: all deps debs venv demo demo-scale test lint typecheck unit bench clean registry-image install-restart-unit

all: venv

debs:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  (apt-get update -qq || true) && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(BIN)/strata: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/python scripts/entry_script.py $(BIN)/strata  # pip's script, started without site (faster)
	$(BIN)/python -m compileall -q src >/dev/null
	touch $@

venv: $(BIN)/strata

deps: debs venv

demo: deps
	bash scripts/demo.sh

# strata's own registry as an image (strata-registry:latest; DOCKER=1 loads it into Docker too)
registry-image: venv
	$(BIN)/python scripts/registry_image.py $(if $(DOCKER),--docker)

# the systemd unit that runs `strata start --all` at boot (README: Restart policies)
SYSTEMD_DIR ?= /etc/systemd/system
STRATA_BIN ?= $(CURDIR)/$(BIN)/strata
install-restart-unit:
	install -d $(DESTDIR)$(SYSTEMD_DIR)
	sed 's|^ExecStart=/usr/local/bin/strata |ExecStart=$(STRATA_BIN) |' contrib/systemd/strata-restart.service \
	  > $(DESTDIR)$(SYSTEMD_DIR)/strata-restart.service
	chmod 644 $(DESTDIR)$(SYSTEMD_DIR)/strata-restart.service
	if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then \
	  systemctl daemon-reload && systemctl enable strata-restart.service; fi

demo-scale: deps
	bash scripts/demo-scale.sh

lint: venv
	$(BIN)/ruff check src tests
	$(BIN)/mypy

test: deps lint
	$(BIN)/pytest -q -ra

bench: deps
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info
