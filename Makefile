# NYC 911 lakehouse. Two commands do all set-up and work: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv spark-deps browser-deps run lab test lint unit nbval notebooks screenshot sdp lock clean
NB_TMP := $(shell mktemp -u /tmp/nyc911-nb.XXXXXX)

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

# Every install goes through tools/install.py: uv (pinned; parallel downloads, builds and bytecode
# compilation: about half of pip's time), with pip's settings passed on. INSTALLER=pip uses pip.
INSTALLER ?= uv
INSTALL = NYC911_INSTALLER=$(INSTALLER) $(BIN)/python tools/install.py

# The default engine (SQLFrame on DuckDB, delta-rs) needs Python only: `make run` installs it. A
# new venv gets at once the locks its goal needs (uv builds pyspark's wheel from its sdist while it
# unpacks the rest): `make test` on a new clone, 56 s here, against 85 s lock by lock.
FIRST_LOCKS := -r requirements-lock.txt \
  $(if $(filter test bench sdp spark-deps,$(MAKECMDGOALS)),-r requirements-spark-lock.txt) \
  $(if $(filter test lint unit nbval screenshot,$(MAKECMDGOALS)),-r requirements-dev-lock.txt)
$(STAMP): pyproject.toml requirements-lock.txt tools/install.py
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python 3.10+ is required (found %s)" % sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(INSTALL) $(FIRST_LOCKS)
	$(INSTALL) --no-deps -e .
	@touch $(STAMP)

# The Spark engine (pyspark + delta-spark, and the two Delta jars for the pinned pair, copied from
# Maven Central by Maven's dependency plugin into .jars/, git-ignored; without Maven Spark
# resolves the same jars itself at first use) and the test tools: what `make test` adds.
SPARK_MINOR := 4.2
DELTA_VERSION := 4.4.0
JARS := .jars/delta-spark_$(SPARK_MINOR)_2.13-$(DELTA_VERSION).jar .jars/delta-storage-$(DELTA_VERSION).jar
SPARK_STAMP := $(VENV)/.spark-stamp
DEV_STAMP := $(VENV)/.dev-stamp

.jars/delta-spark_%.jar:
	@command -v mvn >/dev/null || { echo "mvn not found: Spark will resolve the Delta jars itself at first use"; exit 0; }
	mvn -q -B dependency:copy -Dartifact=io.delta:delta-spark_$(SPARK_MINOR)_2.13:$(DELTA_VERSION) -DoutputDirectory=.jars

.jars/delta-storage-%.jar:
	@command -v mvn >/dev/null || exit 0
	mvn -q -B dependency:copy -Dartifact=io.delta:delta-storage:$(DELTA_VERSION) -DoutputDirectory=.jars

$(SPARK_STAMP): $(STAMP) requirements-spark-lock.txt | $(JARS)
	$(INSTALL) -r requirements-spark-lock.txt
	@touch $(SPARK_STAMP)

$(DEV_STAMP): $(STAMP) requirements-dev-lock.txt
	$(INSTALL) -r requirements-dev-lock.txt
	@touch $(DEV_STAMP)

venv: $(STAMP) ## Create .venv/ with the pinned dependencies of the default engine and the nyc911 command

spark-deps: $(SPARK_STAMP) ## Add the Spark engine (pyspark, delta-spark, the Delta jars) to .venv/

# Headless Chromium + chromedriver for the browser tests (tests/test_browser.py), from the distro's
# apt packages, so the two always match. Nothing is downloaded by a tool (selenium-manager is never
# used: nyc911lib.report.browser passes both paths explicitly). NYC911_CHROMIUM / NYC911_CHROMEDRIVER
# point at other binaries instead.
BROWSER_PKGS := chromium chromium-driver
browser-deps: ## Install chromium + chromium-driver with apt-get when missing (as root, or sudo -n)
	@browser="$${NYC911_CHROMIUM:-}"; driver="$${NYC911_CHROMEDRIVER:-}"; \
	if [ -z "$$browser" ]; then \
	  for b in chromium chromium-browser google-chrome; do command -v $$b >/dev/null && browser=$$b && break; done; \
	fi; \
	if [ -n "$$browser" ] && command -v "$$browser" >/dev/null \
	   && command -v "$${driver:-chromedriver}" >/dev/null; then \
	  echo "browser-deps: $$(command -v "$$browser") and $$(command -v "$${driver:-chromedriver}") are installed"; \
	  exit 0; \
	fi; \
	if [ "$$(id -u)" = 0 ]; then as_root=""; \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then as_root="sudo -n"; \
	else \
	  echo "browser-deps: chromium/chromedriver missing and cannot install them: not root and no" \
	       "passwordless sudo. Run as root: apt-get update && apt-get install -y" \
	       "--no-install-recommends $(BROWSER_PKGS)" >&2; \
	  exit 1; \
	fi; \
	command -v apt-get >/dev/null || { echo "browser-deps: apt-get not found; install $(BROWSER_PKGS)" \
	  "(or set NYC911_CHROMIUM and NYC911_CHROMEDRIVER)" >&2; exit 1; }; \
	set -x; \
	$$as_root apt-get update && \
	$$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(BROWSER_PKGS)

run: $(STAMP) ## Run the pipeline on the built-in sample and write reports/kpi_report.html (ARGS=... for more)
	$(BIN)/nyc911 run $(ARGS)

# JupyterLab on 127.0.0.1 only, with a token (printed in the URL it opens), over the project; the
# kernel is .venv's python3: nyc911lib and the default engine. As root (a container) it needs
# --allow-root. ARGS=... for more (e.g. ARGS=--no-browser).
lab: $(STAMP) ## Open the notebooks in JupyterLab (localhost, token; the default engine, the default warehouse)
	$(BIN)/jupyter lab --ip=127.0.0.1 --ServerApp.root_dir=$(CURDIR) --LabApp.default_url=/lab/tree/notebooks \
	  $$( [ "$$(id -u)" = 0 ] && echo --allow-root ) $(ARGS)

lint: $(DEV_STAMP) ## ruff over the library, the pipeline sources, the tests and the benchmarks
	$(BIN)/ruff check nyc911lib pipelines tests benchmarks tools

# Two test processes at once: the whole suite on the default engine (one pytest worker per core,
# tests grouped by module, the longest first), and beside it the tests marked `spark` (parity on a
# standalone cluster, interop, what only Spark does) or `both` (what must hold on both engines, e.g.
# every default quality rule) on the Spark engine in one JVM; nbval runs beside them too. All are
# CPU-bound (a Spark pipeline run keeps the two cores busy), so more Spark workers, each with its
# own JVM, only compete for them (measured: 23.4 min for 3 against 21.0 for 1). The Spark process's
# and nbval's output go to $(SPARK_TEST_LOG) and $(NBVAL_LOG), printed when they end. Any failure
# fails `make test`.
TEST_WORKERS ?= 2
SPARK_TEST_WORKERS ?= 1
SPARK_TEST_LOG := reports/tests/spark-engine.log
NBVAL_LOG := reports/tests/nbval.log
test: browser-deps $(SPARK_STAMP) $(DEV_STAMP) ## Lint, then every test on both engines (unit, end-to-end, browser, nbval)
	$(BIN)/ruff check nyc911lib pipelines tests benchmarks tools
	@mkdir -p $(dir $(SPARK_TEST_LOG))
	@echo "Spark engine tests and nbval running beside the default engine's: $(SPARK_TEST_LOG), $(NBVAL_LOG)"
	@NYC911_ENGINE=spark $(BIN)/python -m pytest -n $(SPARK_TEST_WORKERS) --dist loadfile -m "spark or both" $(ARGS) \
	  > $(SPARK_TEST_LOG) 2>&1 & spark=$$!; \
	( $(NBVAL) ) > $(NBVAL_LOG) 2>&1 & notebooks=$$!; \
	trap 'kill $$spark $$notebooks 2>/dev/null' INT TERM; \
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(ARGS); default=$$?; \
	wait $$notebooks; notebooks_status=$$?; \
	echo "=== nbval ($(NBVAL_LOG)) ==="; cat $(NBVAL_LOG); \
	wait $$spark; spark_status=$$?; \
	echo "=== Spark engine tests ($(SPARK_TEST_LOG)) ==="; cat $(SPARK_TEST_LOG); \
	echo "make test: default engine exit $$default, Spark engine exit $$spark_status, nbval exit $$notebooks_status"; \
	test $$default -eq 0 -a $$spark_status -eq 0 -a $$notebooks_status -eq 0

NBVAL = NYC911_WAREHOUSE=$(NB_TMP)/warehouse NYC911_REPORTS_DIR=$(NB_TMP)/reports \
	  $(BIN)/python -m pytest -p no:cacheprovider --nbval notebooks \
	  --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-current-env -o testpaths=notebooks; \
	  status=$$?; rm -rf $(NB_TMP); test $$status -eq 0
nbval: $(DEV_STAMP) ## Re-run the notebooks on the sample and compare with their stored outputs (nbval)
	$(NBVAL)

notebooks: $(STAMP) ## Re-execute the notebooks in place on the sample (refreshes the outputs nbval compares)
	cd notebooks && for nb in 01_bronze 02_silver 03_gold 04_kpi_report 05_explore; do \
	  NYC911_WAREHOUSE=$(NB_TMP)/warehouse NYC911_REPORTS_DIR=$(NB_TMP)/reports \
	  ../$(BIN)/jupyter-execute --inplace $$nb.ipynb || exit 1; done; rm -rf $(NB_TMP)

screenshot: browser-deps $(DEV_STAMP) ## Refresh the README's report screenshot (reports/screenshots/kpi_report.png)
	NYC911_UPDATE_SCREENSHOT=1 $(BIN)/python -m pytest -p no:cacheprovider tests/test_report_e2e.py -k test_sample_report_in_the_browser

unit: $(DEV_STAMP) ## Only the fast unit tests (default engine)
	$(BIN)/python -m pytest -m "not e2e and not browser" $(ARGS)

sdp: $(SPARK_STAMP) ## The declarative runner into warehouse-declarative/ (open-source Spark Declarative Pipelines, Delta)
	$(BIN)/nyc911 run --runner declarative --warehouse warehouse-declarative $(ARGS)

.PHONY: bench
bench: $(SPARK_STAMP) ## Benchmarks (< 15 min, not in `make test`): reports/bench/bench.{md,json} (ARGS=--scenarios a,c,f ...)
	$(INSTALL) -r benchmarks/requirements.txt
	$(BIN)/python -m benchmarks.run $(ARGS)

lock: ## Re-pin the three lock files from pyproject.toml in scratch venvs
	rm -rf /tmp/nyc911-lock && $(PYTHON) -m venv /tmp/nyc911-lock
	/tmp/nyc911-lock/bin/pip install --quiet ".[local,spark,dev]"
	/tmp/nyc911-lock/bin/pip freeze --exclude nyc911lib > /tmp/nyc911-lock-all.txt
	rm -rf /tmp/nyc911-lock && $(PYTHON) -m venv /tmp/nyc911-lock
	/tmp/nyc911-lock/bin/pip install --quiet ".[local]"
	/tmp/nyc911-lock/bin/pip freeze --exclude nyc911lib > /tmp/nyc911-lock-local.txt
	rm -rf /tmp/nyc911-lock && $(PYTHON) -m venv /tmp/nyc911-lock
	/tmp/nyc911-lock/bin/pip install --quiet ".[local,spark]"
	/tmp/nyc911-lock/bin/pip freeze --exclude nyc911lib > /tmp/nyc911-lock-spark.txt
	$(PYTHON) -m benchmarks.split_locks /tmp/nyc911-lock-all.txt /tmp/nyc911-lock-local.txt /tmp/nyc911-lock-spark.txt

clean: ## Remove the local warehouse and generated reports (keeps .venv)
	rm -rf warehouse reports/runs reports/*.html reports/*.json
