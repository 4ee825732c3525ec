"""One stage registry for every route (jobs.pipeline.STAGES, run_stage): recon_run records running, failed
(with the stage and the error) and succeeded whichever route runs a stage in process (the remote route, the DAG's
operators against moto: tests/remote)."""
from datetime import date

import pytest

from jobs import pipeline, remote, runner
from jobs.settings import ConfigurationError
from jobs.stages import DAILY_SPARK_STAGES, STAGE_NAMES
from jobs.store.db import connect

pytestmark = pytest.mark.postgres
DAY = date(2026, 11, 20)


def recorded(settings, tenant):
    with connect(settings, tenant) as conn:
        return conn.execute("SELECT run_id, status, started_at, finished_at, summary FROM recon_run "
                            "WHERE tenant_id = %s AND business_date = %s", (tenant, DAY)).fetchone()


def test_the_registry_is_the_one_list_of_stages():
    assert tuple(pipeline.STAGES) == STAGE_NAMES
    assert {n for n, s in pipeline.STAGES.items() if s.spark} == {*DAILY_SPARK_STAGES, "maintain"}
    assert {n for n, s in pipeline.STAGES.items() if not s.recorded} == {"alerts", "report", "maintain"}
    from jobs.cli import build_parser

    stage = build_parser().parse_args(["stage", "erp_export", "--tenant", "acme", "--business-date", "2026-11-20",
                                       "--run-id", "r", "--no-record"])
    assert stage.name == "erp_export" and stage.no_record
    assert remote.stage_argv("ledger", "acme", DAY, "r 1")[-2:] == ["--no-record", "--recorded-config"]


def test_a_run_is_recorded_running_failed_with_its_stage_and_succeeded(settings, tenant_id, monkeypatch):
    ctx = pipeline.RunContext(settings, tenant_id, DAY, "scheduled__1")
    assert pipeline.run_stage(ctx, "land") == []                 # no landing folder, no inbox: nothing to land
    first = recorded(settings, tenant_id)
    assert (first["run_id"], first["status"], first["finished_at"]) == ("scheduled__1", "running", None)

    def broken(ctx, cfg, spark):
        raise ValueError("the lake said no\nsecond line")
    monkeypatch.setitem(pipeline.STAGES, "parse", pipeline.Stage("parse", False, broken, lambda r: {}))
    with pytest.raises(ValueError):
        pipeline.run_stage(ctx, "parse")
    failed = recorded(settings, tenant_id)
    assert failed["status"] == "failed" and failed["finished_at"] is not None
    assert failed["summary"] == {"error": "ValueError: the lake said no second line", "failed_stage": "parse"}

    monkeypatch.setitem(pipeline.STAGES, "parse", pipeline.Stage("parse", False, lambda *a: [], lambda r: {}))
    pipeline.run_stage(ctx, "parse")                              # the retry: running again, the error gone
    again = recorded(settings, tenant_id)
    assert again["status"] == "running" and again["summary"] == {} and again["started_at"] == first["started_at"]

    with connect(settings, tenant_id) as conn:                               # what publish records
        conn.execute("UPDATE recon_run SET status = 'succeeded', summary = %s WHERE tenant_id = %s",
                     ('{"ledger_balanced": true}', tenant_id))
    monkeypatch.setitem(pipeline.STAGES, "erp_export", pipeline.Stage("erp_export", False, lambda *a: {}, dict))
    pipeline.run_stage(ctx, "erp_export")                         # a stage after publish leaves it succeeded
    done = recorded(settings, tenant_id)
    assert done["status"] == "succeeded" and done["summary"] == {"ledger_balanced": True}

    later = pipeline.RunContext(settings, tenant_id, DAY, "manual__2")
    pipeline.run_stage(later, "land")             # another run of the day: its own clock, not the last run's figures
    rerun = recorded(settings, tenant_id)
    assert rerun["started_at"] > first["started_at"] and (rerun["status"], rerun["summary"]) == ("running", None)


def test_in_a_remote_mode_the_worker_runs_only_the_stages_without_spark(settings, tenant_id, monkeypatch):
    for name, value in {"RECON_SPARK_MODE": "glue", "RECON_LAKE": settings.lake,
                        "RECON_DATABASE_URL": settings.database_url,
                        "RECON_TENANT_CONFIG_DIR": str(settings.tenant_config_dir)}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match="stage match needs Spark, which runs as a job in RECON_SPARK_MODE=glue"):
        runner.run_stage("match", tenant_id, DAY, "scheduled__1")
    assert recorded(settings, tenant_id) is None                  # refused before anything was recorded
    assert runner.run_stage("land", tenant_id, DAY, "scheduled__1") == {"landed": 0, "already_landed": 0}
    assert recorded(settings, tenant_id)["status"] == "running"
    with pytest.raises(ConfigurationError, match="needs RECON_GLUE_JOB_NAME, RECON_CODE_URI, RECON_ENTRY_URI, "
                                                  "RECON_UDF_JAR_URI, RECON_PII_SALT_SECRET_PREFIX"):
        remote.prepare_job("match", tenant_id, DAY, "scheduled__1")
