# psp-recon: the two commands are `make demo` and `make test`; both set everything up first.
SHELL := /bin/bash
.DEFAULT_GOAL := help
.PHONY: help setup venv jars checkov browser pg migrate airflow-db demo test test-fast test-remote test-ingest bench bench-pipeline bench-parse bench-history bench-quality airflow webhooks package lock clean

PY      := .venv/bin/python
LOCAL   := .local
BENCH_SCALES     ?= 100000,1000000,10000000
BENCH_PARSE_ROWS ?= 1000000
STAMP   := .venv/.installed-$(shell cat requirements.lock pyproject.toml 2>/dev/null | sha256sum | cut -c1-16)

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

setup: venv jars pg migrate airflow-db checkov browser  ## venv + Spark jars + PostgreSQL + schema + Airflow DB + checkov + chromium (idempotent)

venv: $(STAMP)
$(STAMP): requirements.lock pyproject.toml infra/local/bootstrap_venv.sh
	@rm -f .venv/.installed-*
	bash infra/local/bootstrap_venv.sh
	@touch $@

jars: venv  ## Delta / hadoop-aws jars from Maven Central into .local/jars (checksummed), the project's JVM functions compiled
	@$(PY) -m jobs.localenv.jars >/dev/null && echo "jars ready: $(LOCAL)/jars"

pg: venv  ## the project's own PostgreSQL on 127.0.0.1 (skipped when RECON_DATABASE_URL is set)
	@if [ -n "$$RECON_DATABASE_URL" ]; then echo "using RECON_DATABASE_URL"; \
	 else python3 -m jobs.localenv.postgres start >/dev/null && echo "postgres ready: $$(python3 -m jobs.localenv.postgres url | sed -E 's/:[^:@]*@/:***@/')"; fi

migrate: pg  ## apply SQL migrations (sql/migrations)
	@.venv/bin/recon db migrate

CHECKOV_VERSION := 3.3.30
checkov: $(LOCAL)/checkov/.installed-$(CHECKOV_VERSION)  ## checkov (Terraform policy checks) in its own virtualenv, outside the lock
$(LOCAL)/checkov/.installed-$(CHECKOV_VERSION):
	@rm -rf $(LOCAL)/checkov && python3 -m venv $(LOCAL)/checkov
	$(LOCAL)/checkov/bin/pip install -q "checkov==$(CHECKOV_VERSION)"
	@touch $@

browser:  ## Debian's chromium for the Reconciliation page's browser test (apt-get as root; skipped when installed)
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null; } || \
	  { echo "chromium is missing and cannot be installed here (needs root and apt-get): install Debian's chromium"; exit 1; }
	@echo "chromium ready: $$(chromium --version 2>/dev/null)"

airflow-db: $(LOCAL)/airflow/.migrated
$(LOCAL)/airflow/.migrated: $(STAMP)
	@mkdir -p $(LOCAL)/airflow
	.venv/bin/airflow db migrate >/dev/null
	@touch $@

demo: setup  ## generate a small day, run the reconcile_daily DAG through Airflow, print the summary
	$(PY) -m jobs.demo

TEST_WORKERS ?= 2

test: setup  ## the whole suite: unit, DAG integrity, PostgreSQL integration, end-to-end (slow ones included), TEST_WORKERS processes
	.venv/bin/pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder

test-fast: setup  ## everything but the end-to-end tests
	.venv/bin/pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder -m "not e2e"

test-remote: setup  ## the production path without AWS: each remote mode's DAG and the catalog against moto, the packaged job through spark-submit, the analyst views over the end-to-end lake, Terraform
	.venv/bin/pytest tests/remote tests/infra tests/dags tests/unit/test_secrets.py tests/e2e

bench: bench-pipeline bench-parse  ## end-to-end vs DuckDB (100k/1M/10M), Postgres publish, DAG at 1M, parse rows/s per format -> bench/results/

bench-pipeline: setup  ## ours vs the DuckDB baseline per scale (BENCH_SCALES=100000,1000000,10000000), publish, DAG -> bench/results/latest.*
	$(PY) bench/run.py --scales $(BENCH_SCALES) $(BENCH_ARGS)

bench-parse: setup  ## parse throughput per format at 1M records (BENCH_PARSE_ROWS) -> bench/results/parse.*
	$(PY) bench/parse_bench.py --rows $(BENCH_PARSE_ROWS)

bench-history: setup  ## 30 consecutive days x 100k payments, one process per day on one lake (HISTORY_ARGS) -> bench/results/history.*
	$(PY) bench/history.py $(HISTORY_ARGS)

bench-quality: setup  ## matching precision / recall / reason codes vs ground truth at 3 noise levels -> bench/results/quality.*
	$(PY) bench/quality.py

test-ingest: setup  ## ingestion against real local servers (SFTP, IMAP, PSP API, moto S3, webhook receiver)
	.venv/bin/pytest tests/ingest -m "not e2e"

webhooks: setup  ## the signed-webhook receiver (RECON_WEBHOOK_HOST / RECON_WEBHOOK_PORT, default 127.0.0.1:8090)
	.venv/bin/recon webhooks serve

airflow: setup  ## the Airflow UI on http://127.0.0.1:8080 (admin password printed at start)
	@echo "Airflow UI: http://127.0.0.1:8080  (user admin; password in $(LOCAL)/airflow/simple_auth_manager_passwords.json.generated)"
	PATH="$(CURDIR)/.venv/bin:$$PATH" exec .venv/bin/airflow standalone

package: venv  ## the job archive, entry script and JVM functions jar for EMR / EMR Serverless / Glue -> dist/
	$(PY) infra/emr/build_package.py --out dist

lock:  ## re-resolve requirements.lock from pyproject.toml (needs the venv's uv)
	.venv/bin/uv pip compile pyproject.toml --extra dev --python .venv/bin/python --no-annotate \
	  --custom-compile-command "make lock" -o requirements.lock

clean:  ## remove the local lake, demo data and Airflow home (keeps venv, jars and the database server)
	rm -rf $(LOCAL)/lake $(LOCAL)/demo $(LOCAL)/airflow
