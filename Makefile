# imagehost: `make serve` runs the whole product, `make test` passes the tests.
# Both install what they need first (Debian packages, the virtualenv).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# what `make serve` runs on: the malware scanner and the edge
SERVE_PACKAGES := clamav-daemon nginx-light libnginx-mod-http-js
# what the tests and benchmarks add: real photos (Debian's wallpaper packages: the test photos, and the
# benchmarks' libraries), a load generator, Varnish, a browser, Prometheus
TEST_PACKAGES  := $(SERVE_PACKAGES) mate-backgrounds lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 wrk varnish \
                  varnish-vmod-digest chromium prometheus plasma-workspace-wallpapers ukui-wallpapers lomiri-wallpapers \
                  sway-backgrounds
# every Debian wallpaper package: the benign photos loadtest/bench_moderation.py measures the model on
MODERATION_BENCH_PACKAGES := mate-backgrounds gnome-backgrounds ukui-wallpapers plasma-workspace-wallpapers \
	lomiri-wallpapers lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 sway-backgrounds
STAMP  := $(VENV)/.installed

.PHONY: serve test bench bench-moderation bench-reads bench-throughput bench-ingest bench-encoders bench-cost \
        loadtest fuzz cluster faults install serve-packages test-packages clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

# Installs the Debian packages that are missing. The project starts its own clamd, Prometheus (tests),
# nginx and varnishd on loopback with its own configuration; the distribution's
# services (and freshclam, which would fetch signatures) are kept stopped.
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
		if [ -d /run/systemd/system ]; then \
			$$SUDO systemctl disable --now nginx varnish varnishncsa clamav-daemon clamav-freshclam prometheus \
				prometheus-node-exporter 2>/dev/null || true; \
		fi; \
	fi
endef

serve-packages:
	$(call apt_install,$(SERVE_PACKAGES))

test-packages:
	$(call apt_install,$(TEST_PACKAGES))

serve: serve-packages install
	$(BIN)/python -m edge.run

test: test-packages install
	$(BIN)/python -m pytest -q

bench: test-packages install
	$(BIN)/python loadtest/bench_render.py

bench-moderation: install
	$(call apt_install,$(MODERATION_BENCH_PACKAGES))
	$(BIN)/python loadtest/bench_moderation.py

# cold-start reads through `make serve`'s launcher (loadtest/bench_reads.py)
bench-reads: test-packages install
	$(BIN)/python loadtest/bench_reads.py

# uncached render throughput: the origin, the raw pyvips loop, thumbor, ipx (loadtest/bench_throughput.py)
bench-throughput: test-packages install
	$(BIN)/python loadtest/bench_throughput.py

# uploads per second through the whole pipeline against the sum of its stages (loadtest/bench_ingest.py)
bench-ingest: test-packages install
	$(BIN)/python loadtest/bench_ingest.py

# encoder settings: time, bytes and SSIM by WebP and AVIF effort (loadtest/bench_encoders.py)
bench-encoders: test-packages install
	$(BIN)/python loadtest/bench_encoders.py

# the production shape on loopback (edge/cluster.py): nginx, 2 origins, 2 workers, PostgreSQL, S3 + SQS, clamd
cluster: test-packages install
	$(BIN)/python -m edge.cluster

# the fault drill (loadtest/faults.py): the cluster under read and upload load, one part failing at a time
faults: test-packages install
	$(BIN)/python loadtest/faults.py

# the property tests of tests/test_fuzz.py with many more examples and fresh randomness each run
fuzz: install
	IMAGEHOST_FUZZ_EXAMPLES=$${IMAGEHOST_FUZZ_EXAMPLES:-20000} IMAGEHOST_FUZZ_RANDOM=1 $(BIN)/python -m pytest -q tests/test_fuzz.py

# the cost benchmark (loadtest/bench_cost.py): 90 simulated days of uploads, reads and lifecycle, priced
bench-cost: test-packages install
	$(BIN)/python loadtest/bench_cost.py

loadtest: test-packages install
	$(BIN)/python loadtest/run_loadtest.py

clean:
	rm -rf $(VENV) var test-output
