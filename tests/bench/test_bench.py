"""The benchmark's own code, small: the DuckDB baseline and our pipeline agree on a tiny generated day,
the results file has the documented shape, targets say by how much they are missed, and the
process measurement sees a child's memory and stops it at its time limit. (The figures themselves
come from ``make bench``, never from timed tests.)"""
from __future__ import annotations

import json
import sys
import time
from datetime import date
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import run as bench_run  # noqa: E402


@pytest.fixture(scope="module")
def tiny_day(tmp_path_factory):
    from bench.day import prepare_day

    return prepare_day(400, seed=11, data_dir=tmp_path_factory.mktemp("bench-data"), log=lambda *a: None)


def test_tiny_day_is_cached_by_seed_and_scale(tiny_day):
    from bench.day import prepare_day

    again = prepare_day(400, seed=11, data_dir=Path(tiny_day.landing).parents[2], log=lambda *a: None)
    assert again == tiny_day                               # read back from day.json, not generated again
    assert set(tiny_day.files) == {"book", "psp", "bank"} and all(tiny_day.files.values())
    assert tiny_day.book_payments >= 400 and tiny_day.psp_records > 0 and tiny_day.bank_entries > 0


@pytest.mark.spark
@pytest.mark.postgres
def test_duckdb_baseline_and_our_pipeline_agree_on_a_tiny_day(spark, settings, tenant_id, tiny_day):
    from bench.baseline_duckdb import load_config, run
    from bench.ours import run_day

    duck = run(Path(tiny_day.landing), load_config(tenant_id, settings.tenant_config_dir), threads=1)
    marks = []
    run_day(settings, tenant_id, date.fromisoformat(tiny_day.business_date), Path(tiny_day.landing), "pytest-bench",
            marks.append, spark=spark)
    assert marks == ["prepare", "land", "jvm_start", "parse", "match", "ledger"]

    ours = bench_run.lake_figures(settings.lake, tenant_id)
    verdict = bench_run.compare(ours, duck)
    assert verdict["all"], json.dumps(verdict, indent=1)
    assert duck["pairs"]["L1"] > 300 and duck["payout_bank_pairs"] >= 1
    for currency, t in bench_run.ledger_totals(ours["ledger"]).items():
        assert t["debit"] == t["credit"], currency         # every currency balances


def test_compare_reports_the_differences():
    row = {"account_key": "bank", "psp": "", "currency": "EUR", "lines": 1, "debit": 100, "credit": 0}
    ours = {"pairs": {"L1": 5, "L2": 1}, "payout_bank_pairs": 1, "ledger": [row]}
    duck = {"pairs": {"L1": 5, "L2": 2}, "payout_bank_pairs": 1, "ledger": [{**row, "debit": 101}]}
    verdict = bench_run.compare(ours, duck)
    assert not verdict["all"] and verdict["L1"] and not verdict["L2"] and not verdict["ledger"]
    assert verdict["L2_counts"] == {"ours": 1, "duckdb": 2}
    assert verdict["ledger_differences"][0]["ours"] == (1, 100, 0)


def _result() -> dict:
    stages = {"process_start": 0.1, "imports": 0.0, "prepare": 0.5, "land": 1.0, "jvm_start": 8.0, "parse": 40.0,
              "match": 50.0, "ledger": 20.0}
    scale = {"scale": 10_000_000, "book_payments": 10_050_000, "records": 22_000_000, "ours_s": 120.0,
             "duckdb_s": 40.0, "ratio": 3.0, "peak_rss_gib": 9.5, "stages": stages, "rows_per_s": 183_333,
             "duckdb_stages": {"startup": 0.2, "normalise": 30.0, "match": 5.0, "ledger": 4.8},
             "agree": {"L1": True, "L2": True, "payout_bank": True, "ledger": True, "all": True}}
    return {"machine": {"cpus": 2, "cpu": "test", "memory_gib": 23.5, "python": "3.11", "pyspark": "3.5.6",
                        "duckdb": "x", "load_average_at_start": [0.5, 0.5, 0.5]},
            "written": "now", "scales": {"10000000": scale, "1000000": {"scale": 1_000_000, "ours_error": "exit code 1",
                                                                       "stages": {"parse": 3.0}}},
            "postgres_publish_rows_per_s": {"staging": 600_000, "effective": 150_000},
            "postgres_publish": {"rows": 1_000_000, "copy_s": 1.67, "upsert_s": 5.0, "staging_rows_per_s": 600_000,
                                 "effective_rows_per_s": 150_000},
            "dag_1m_s": 300.0, "dag": {"scale": 1_000_000, "dag_s": 300.0, "task_s": 150.0, "succeeded": True,
                                       "orchestration_overhead_s": 50.0, "tasks": [{"task_id": "parse", "seconds": 60}]}}


def test_results_file_has_the_documented_shape_and_says_how_much_targets_miss(tmp_path):
    result = _result()
    bench_run.write(result, tmp_path)
    written = json.loads((tmp_path / "latest.json").read_text())
    for key in ("machine", "scales", "postgres_publish_rows_per_s", "dag_1m_s"):
        assert key in written
    s = written["scales"]["10000000"]
    for key in ("ours_s", "duckdb_s", "ratio", "peak_rss_gib", "stages"):
        assert key in s
    targets = {t["name"]: t for t in written["targets"]}
    assert targets["ours_10m_s"]["met"] is False and targets["ours_10m_s"]["missed_by"].startswith("1.33x")
    assert targets["ratio_10m"]["met"] is False and targets["peak_rss_10m_gib"]["met"] is True
    assert targets["ours_1m_s"]["met"] is None                # not finished: not measured, no figure invented
    assert targets["publish_staging_rows_per_s"]["met"] is True
    assert targets["publish_effective_rows_per_s"]["met"] is False and targets["dag_1m_s"]["met"] is False
    assert targets["dag_1m_s"]["missed_by"].startswith("1.25x")            # issue 16: the DAG at 1M <= 240 s
    assert targets["ratio_1m"]["met"] is None and "error" in targets["ratio_1m"]["note"]
    assert targets["ratio_100k"]["met"] is None and targets["ratio_100k"]["note"] == "not run in this benchmark"
    md = (tmp_path / "latest.md").read_text()
    assert "| 10,050,000 |" in md and "not finished: exit code 1" in md and "**no**" in md


def test_committed_results_have_the_documented_shape():
    path = REPO / "bench" / "results" / "latest.json"
    if not path.exists():
        pytest.skip("no results committed yet (make bench)")
    result = json.loads(path.read_text())
    assert {"machine", "scales", "postgres_publish_rows_per_s", "dag_1m_s"} <= set(result)
    assert set(result["scales"]) >= {"100000", "1000000", "10000000"}
    for n, s in result["scales"].items():
        assert ("ours_s" in s and "stages" in s) or "ours_error" in s, n
        if "ours_s" in s and "duckdb_s" in s:
            assert {"ratio", "peak_rss_gib"} <= set(s) and s["agree"]["all"], n


def test_measured_child_memory_and_time_limit(tmp_path):
    code = "import time; x = bytearray(200 * 1024 * 1024); x[::4096] = b'1' * len(x[::4096]); time.sleep(1.5)"
    m = bench_run.Measured([sys.executable, "-c", code], tmp_path / "a.log", interval=0.05).run()
    assert m.returncode == 0 and m.peak_rss > 200 * 1024 * 1024
    started = time.time()
    m = bench_run.Measured([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "b.log",
                           timeout=1).run()
    assert m.timed_out and time.time() - started < 30


def _event_log(path: Path) -> Path:
    """A small event log with Spark's own field names: two overlapping jobs in parse (one of them with a
    skewed stage that spills), one job in match; the last line cut short like a killed writer's."""
    def job(jid, start, end, stages, site):
        return [{"Event": "SparkListenerJobStart", "Job ID": jid, "Submission Time": start * 1000,
                 "Stage IDs": stages, "Properties": {"callSite.short": site}},
                {"Event": "SparkListenerJobEnd", "Job ID": jid, "Completion Time": end * 1000}]

    def task(sid, launch, finish, run_ms, shuffle=0, spill=0):
        return {"Event": "SparkListenerTaskEnd", "Stage ID": sid,
                "Task Info": {"Launch Time": launch * 1000, "Finish Time": finish * 1000},
                "Task Metrics": {"Executor Run Time": run_ms, "Disk Bytes Spilled": spill, "Memory Bytes Spilled": 0,
                                 "Shuffle Write Metrics": {"Shuffle Bytes Written": shuffle},
                                 "Input Metrics": {"Bytes Read": 1_000_000_000}}}

    events = job(0, 1000, 1040, [0], "load at parse.py:10") + job(1, 1030, 1050, [1], "save at lake.py:99")
    events += [task(0, 1000, 1040, 40_000, shuffle=2_000_000_000, spill=500_000_000)]
    events += [task(0, 1000, 1002, 2_000) for _ in range(4)]
    events += [{"Event": "SparkListenerStageCompleted", "Stage Info": {"Stage ID": 0, "Stage Name": "load at parse"}}]
    events += [task(1, 1030, 1050, 20_000)]
    events += job(2, 1100, 1110, [2], "count at engine.py:5") + [task(2, 1100, 1110, 10_000)]
    path.write_text("\n".join(json.dumps(e) for e in events) + '\n{"Event": "SparkListenerTaskE')
    return path


def test_event_log_profile_splits_job_and_driver_time_per_stage(tmp_path):
    from bench import eventlog

    log = eventlog.load(_event_log(tmp_path / "local-1"))
    ours = {"started_at": 990.0, "stages": {"jvm_start": 5.0, "parse": 65.0, "match": 40.0, "ledger": 10.0}}
    phases = eventlog.phases_from_marks(ours)
    assert phases == [("parse", 995.0, 1060.0), ("match", 1060.0, 1100.0), ("ledger", 1100.0, 1110.0)]
    prof = eventlog.profile(log, phases)
    parse = prof["parse"]
    assert parse["jobs"] == 2 and parse["job_s"] == 50.0          # 1000-1050: overlapping jobs counted once
    assert parse["driver_s"] == 15.0 and parse["task_s"] == 68.0 and parse["tasks"] == 6
    assert parse["shuffle_write_gb"] == 2.0 and parse["spill_disk_gb"] == 0.5 and parse["input_gb"] == 6.0
    assert parse["top_jobs"][0] == {"job": 0, "s": 40.0, "site": "load at parse.py:10"}
    assert parse["skewed"] == [{"stage_id": 0, "name": "load at parse", "tasks": 5, "max_task_s": 40.0,
                                "median_task_s": 2.0}]
    assert prof["match"]["jobs"] == 0 and prof["match"]["driver_s"] == 40.0     # no Spark job: all driver time
    assert prof["ledger"]["jobs"] == 1 and prof["ledger"]["job_s"] == 10.0 and prof["ledger"]["skewed"] == []


def test_profile_lands_in_the_results_table(tmp_path):
    from bench import eventlog

    folder = tmp_path / "eventlog"
    folder.mkdir()
    _event_log(folder / "local-1")
    ours = {"started_at": 990.0, "stages": {"jvm_start": 5.0, "parse": 65.0, "match": 40.0, "ledger": 10.0}}
    result = _result()
    result["scales"]["10000000"]["profile"] = bench_run.spark_profile(folder, ours)
    assert bench_run.spark_profile(tmp_path / "none", ours)["error"].startswith("no Spark event log")
    bench_run.write(result, tmp_path)
    md = (tmp_path / "latest.md").read_text()
    assert "| 10,000,000 | parse | 65.0 | 2 | 50.0 | 15.0 | 68.0 | 2.0 | 0.5 | 40.0 s: `load at parse.py:10` |" in md
    assert "Skew at 10,000,000 in parse: stage 0 (load at parse), longest task 40.0 s" in md
    assert eventlog.main([str(folder)]) == 0


def test_spark_settings_and_time_limit_grow_with_the_scale(monkeypatch, tmp_path):
    for name in ("RECON_SPARK_DRIVER_MEMORY", "RECON_SPARK_SHUFFLE_PARTITIONS", "RECON_SPARK_CONF"):
        monkeypatch.delenv(name, raising=False)
    small = bench_run.spark_settings(1_000_000, tmp_path / "1m")
    assert (small["RECON_SPARK_DRIVER_MEMORY"], small["RECON_SPARK_SHUFFLE_PARTITIONS"]) == ("6g", "8")
    assert small["RECON_SPARK_CONF"] == f"spark.eventLog.enabled=true,spark.eventLog.dir={(tmp_path / '1m' / 'eventlog').as_uri()}"
    assert (tmp_path / "1m" / "eventlog").is_dir()                     # Spark refuses a missing event log folder
    big = bench_run.spark_settings(10_000_000, tmp_path / "10m")
    assert (big["RECON_SPARK_DRIVER_MEMORY"], big["RECON_SPARK_SHUFFLE_PARTITIONS"]) == ("12g", "64")
    assert big["RECON_SPARK_CONF"].startswith("spark.memory.fraction=0.5,spark.eventLog.enabled=true")
    monkeypatch.setenv("RECON_SPARK_SHUFFLE_PARTITIONS", "16")
    monkeypatch.setenv("RECON_SPARK_CONF", "spark.sql.adaptive.enabled=false")
    mine = bench_run.spark_settings(10_000_000, tmp_path / "10m")
    assert mine["RECON_SPARK_SHUFFLE_PARTITIONS"] == "16"
    assert mine["RECON_SPARK_CONF"].startswith("spark.sql.adaptive.enabled=false,spark.memory.fraction=0.5,")
    assert bench_run.default_timeout(100_000) == 2400 and bench_run.default_timeout(10_000_000) == 9000


def test_a_run_stopped_after_parse_resumes_and_its_figures_say_they_are_stitched(tmp_path):
    earlier = {"started": "t1", "peak_rss_gib": 11.2, "ours_error": "exit code 1",
               "stages": {"process_start": 0.1, "imports": 0.2, "prepare": 0.1, "land": 19.5, "jvm_start": 8.0,
                          "parse": 1174.0}}
    assert not bench_run.resumable(earlier, tmp_path)                 # no lake left: nothing to resume
    (tmp_path / "lake" / "silver" / "events" / "_delta_log").mkdir(parents=True)
    assert bench_run.resumable(earlier, tmp_path)
    assert not bench_run.resumable({**earlier, "ours_s": 2000.0}, tmp_path)   # a finished run starts afresh
    assert not bench_run.resumable({**earlier, "stages": {"land": 19.5}}, tmp_path)

    entry = {"peak_rss_gib": 9.0, "stages": {"process_start": 0.1, "imports": 0.2, "prepare": 0.1, "land": 12.0,
                                             "jvm_start": 7.0, "match": 900.0, "ledger": 600.0}}
    stages = bench_run.stitch(earlier, entry)
    assert stages == {**earlier["stages"], "match": 900.0, "ledger": 600.0}   # the resumed run's start is not counted
    assert entry["peak_rss_gib"] == 11.2 and entry["stitched"]["resume_overhead_s"]["land"] == 12.0
    assert "stitched" in entry and entry["stitched"]["parse_run_started"] == "t1"
