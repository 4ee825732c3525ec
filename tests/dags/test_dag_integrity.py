"""Every DAG file imports cleanly, fast, without heavy libraries, and is configured for operations."""
import subprocess
import sys
from pathlib import Path

import pytest

DAG_DIR = Path(__file__).parents[2] / "dags"
DAG_FILES = sorted(p for p in DAG_DIR.glob("*.py") if not p.name.startswith("_"))
HEAVY = ("pyspark", "pandas", "delta", "deltalake", "pyarrow", "duckdb", "jobs.spark", "jobs.match", "jobs.ledger")


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAG_DIR))


def test_dag_files_exist():
    assert any(p.name == "reconcile_daily.py" for p in DAG_FILES)


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_id_matches_file_and_has_tags_retries_and_docs(dagbag, path):
    dag = dagbag.get_dag(path.stem)
    assert dag is not None, f"{path.name} must define a DAG with dag_id {path.stem!r}"
    assert dag.tags, "tags let operators filter DAGs in the UI"
    assert dag.doc_md and len(dag.doc_md) > 100, "the docstring is the operator's documentation in the UI"
    for task in dag.tasks:
        assert task.retries >= 1, f"{task.task_id} has no retries"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_every_task_and_run_of_every_dag_alerts_when_it_fails(dagbag, path):
    """A task failing on its last try raises an alert and resolves it when it succeeds later; a failed run alerts."""
    from jobs.alerts.callbacks import RunFailed, RunSucceeded, TaskFailed, TaskSucceeded

    dag = dagbag.get_dag(path.stem)
    listed = lambda c: c if isinstance(c, list) else [c]  # noqa: E731
    assert any(isinstance(c, RunFailed) for c in listed(dag.on_failure_callback))
    assert any(isinstance(c, RunSucceeded) for c in listed(dag.on_success_callback))
    for task in dag.tasks:
        assert any(isinstance(c, TaskFailed) for c in task.on_failure_callback or []), task.task_id
        assert any(isinstance(c, TaskSucceeded) for c in task.on_success_callback or []), task.task_id


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_parsing_imports_no_heavy_library(path):
    code = (
        "import importlib.util, sys, time\n"
        f"spec = importlib.util.spec_from_file_location('d', {str(path)!r})\n"
        "m = importlib.util.module_from_spec(spec); t = time.process_time(); spec.loader.exec_module(m)\n"
        f"heavy = sorted(n for n in sys.modules if n.split('.')[0] in {HEAVY!r} or n in {HEAVY!r})\n"
        "print(repr(heavy)); print(time.process_time() - t)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[-2] == "[]", f"{path.name} imports {out[-2]} at parse time"
    # CPU seconds, not wall time: what the DAG processor spends on it, independent of the machine's load
    assert float(out[-1]) < 10, f"{path.name} takes {out[-1]} CPU s to parse"


def test_reconcile_daily_runs_the_ledger_then_publishes_then_exports_to_the_erps(dagbag):
    dag = dagbag.get_dag("reconcile_daily")
    chain = ["land", "parse", "match", "ledger", "publish", "erp_export"]
    tasks = {t.task_id.rsplit(".", 1)[-1]: t for t in dag.tasks}
    assert set(chain) <= set(tasks)
    for before, after in zip(chain, chain[1:]):
        assert tasks[after].task_id in tasks[before].downstream_task_ids, f"{before} >> {after}"
    assert tasks["erp_export"].downstream_task_ids == set()
    # the outcome alerts and the report read what publish wrote, beside the export (a failed export hides neither)
    assert tasks["publish"].downstream_task_ids == {tasks[t].task_id for t in ("erp_export", "alerts", "report")}
    assert tasks["alerts"].downstream_task_ids == tasks["report"].downstream_task_ids == set()


REMOTE_ENV = {"RECON_CODE_URI": "s3://code/psp_recon_jobs.zip", "RECON_ENTRY_URI": "s3://code/recon_entry.py",
              "RECON_UDF_JAR_URI": "s3://code/psp-recon-udf.jar", "RECON_PII_SALT_SECRET_PREFIX": "recon/pii-salt/",
              "RECON_DATABASE_SECRET": "recon/database", "RECON_EMR_SERVERLESS_APP_ID": "00abc",
              "RECON_EMR_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/job", "RECON_EMR_CLUSTER_ID": "j-1",
              "RECON_GLUE_JOB_NAME": "psp-recon", "RECON_LAKE": "s3://recon-lake/lake"}


@pytest.mark.parametrize("mode, operators", [("emr_serverless", ["EmrServerlessStartJobOperator"]),
                                             ("emr", ["EmrAddStepsOperator", "EmrStepSensor"]),
                                             ("glue", ["GlueJobOperator"])])
def test_reconcile_daily_in_a_remote_mode_runs_each_spark_stage_as_a_deferred_job(monkeypatch, mode, operators):
    from airflow.dag_processing.dagbag import DagBag

    for name, value in {**REMOTE_ENV, "RECON_SPARK_MODE": mode}.items():
        monkeypatch.setenv(name, value)
    bag = DagBag(dag_folder=str(DAG_DIR / "reconcile_daily.py"))
    assert bag.import_errors == {}
    tasks = {t.task_id.rsplit(".", 1)[-1]: t for t in bag.get_dag("reconcile_daily").tasks}
    chain = ["land"]
    for stage in ("parse", "match", "ledger", "publish", "erp_export"):
        steps = [f"{stage}_job", *([f"{stage}_step"] if mode == "emr" else []), stage]
        assert tasks[f"{stage}_job"].__class__.__name__ == "_PythonDecoratedOperator"      # prepares, on the worker
        assert [tasks[t].__class__.__name__ for t in steps[1:]] == operators
        assert tasks[stage].deferrable, f"{stage} waits deferred"
        # records the failure in recon_run, then alerts, with the tenant and date its job task knows
        record, alert = tasks[stage].on_failure_callback
        assert record.func.__name__ == "record_failure" and alert.job_task_id == f"reconcile.{stage}_job"
        chain += steps
    for before, after in zip(chain, chain[1:]):
        expected = {tasks[after].task_id} | ({tasks[t].task_id for t in ("alerts", "report")} if before == "publish"
                                             else set())
        assert tasks[before].downstream_task_ids == expected, f"{before} >> {after}"
    success = lambda stage: [c.func.__name__ if hasattr(c, "func") else type(c).__name__
                             for c in tasks[stage].on_success_callback]  # noqa: E731
    assert success("erp_export") == ["record_success_after_publish", "TaskSucceeded"]
    assert success("publish") == ["TaskSucceeded"]
    for t in ("alerts", "report"):
        assert tasks[t].__class__.__name__ == "_PythonDecoratedOperator"        # no Spark: on the worker
    assert all(t.retries >= 1 for t in tasks.values())

    monkeypatch.delenv("RECON_DATABASE_SECRET")
    broken = DagBag(dag_folder=str(DAG_DIR / "reconcile_daily.py"))
    assert "needs RECON_DATABASE_SECRET" in next(iter(broken.import_errors.values()))


@pytest.mark.parametrize("mode, operators", [("emr_serverless", ["EmrServerlessStartJobOperator"]),
                                             ("glue", ["GlueJobOperator"])])
def test_lake_maintenance_runs_in_the_worker_or_as_a_job_and_never_touches_the_daily_runs_record(monkeypatch, mode,
                                                                                                   operators):
    from airflow.dag_processing.dagbag import DagBag

    local = DagBag(dag_folder=str(DAG_DIR / "lake_maintenance.py"))
    assert local.import_errors == {} and local.get_dag("lake_maintenance").schedule == "@weekly"
    assert {t.task_id for t in local.get_dag("lake_maintenance").tasks} == {"tenants", "maintain"}
    for name, value in {**REMOTE_ENV, "RECON_SPARK_MODE": mode}.items():
        monkeypatch.setenv(name, value)
    bag = DagBag(dag_folder=str(DAG_DIR / "lake_maintenance.py"))
    assert bag.import_errors == {}
    tasks = {t.task_id.rsplit(".", 1)[-1]: t for t in bag.get_dag("lake_maintenance").tasks}
    assert [tasks["maintain"].__class__.__name__] == operators
    # no recon_run callback: a failed maintenance job alerts, it does not mark the day's reconciliation failed
    assert [c.__class__.__name__ for c in tasks["maintain"].on_failure_callback] == ["TaskFailed"]
