# imagehost: `make serve` runs the whole product, `make test` passes the tests.
# Both install what they need first (Debian packages, the virtualenv).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
APT_PACKAGES := mate-backgrounds wrk clamav-daemon
STAMP  := $(VENV)/.installed

.PHONY: serve test bench install system-packages clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

system-packages:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

serve: install
	$(BIN)/imagehost serve

test: system-packages install
	$(BIN)/python -m pytest -q

bench: system-packages install
	$(BIN)/python loadtest/bench_render.py

clean:
	rm -rf $(VENV) var test-output
