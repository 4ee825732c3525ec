"""A Spark session whose JVM died is replaced on the next get_spark() (a retried task in the same
process recovers instead of failing with "Connection refused")."""
import subprocess
import sys

import pytest

pytestmark = pytest.mark.spark

CODE = """
import os, signal
from jobs.settings import Settings
from jobs.spark import get_spark
settings = Settings(lake={lake!r})
spark = get_spark(settings)
assert spark.range(3).count() == 3
proc = spark.sparkContext._gateway.proc
proc.kill(); proc.wait()
try:
    spark.range(3).count()
    raise SystemExit("a dead JVM still answered")
except Exception as exc:
    print("dead:", type(exc).__name__)
again = get_spark(settings)
print("alive again:", again.range(5).count())
print("lookups kept:", type(again.sparkContext._jvm).__name__)
"""


def test_a_session_whose_jvm_died_is_replaced(tmp_path):
    out = subprocess.run([sys.executable, "-c", CODE.format(lake=str(tmp_path / "lake"))], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "dead:" in out.stdout and "alive again: 5" in out.stdout
    assert "lookups kept: _CachingJVMView" in out.stdout      # the new gateway's view keeps its lookups too


def test_jvm_lookups_are_asked_once_and_calls_still_reach_the_jvm(spark, monkeypatch):
    """PySpark resolves ``sc._jvm.functions`` and its static method for every column function call; the
    session keeps what resolved (jobs.spark.cache_jvm_lookups), so a repeat asks the JVM nothing, while
    calls and static field reads still go to the JVM and give the right answers."""
    from pyspark.sql import functions as F

    client = spark.sparkContext._gateway._gateway_client
    sent = []
    real = client.send_command
    monkeypatch.setattr(client, "send_command",
                        lambda command, *a, **k: sent.append(command[:1]) or real(command, *a, **k))
    jvm = spark.sparkContext._jvm
    jvm.org.apache.spark.sql.functions.col("x")          # resolved (and perhaps kept by an earlier test)
    sent.clear()
    column = jvm.org.apache.spark.sql.functions.col("x")
    assert sent == ["c"]                                   # the call only: no reflection ("r") round trip
    assert column.toString() == "x"
    jvm.java.lang.Integer                                  # packages and class resolved once ...
    sent.clear()
    assert jvm.java.lang.Integer.MAX_VALUE == 2**31 - 1 and jvm.java.lang.Integer.MAX_VALUE == 2**31 - 1
    assert sent == ["r", "r"]                              # ... but a static field is read from the JVM every time
    jvm.functions
    sent.clear()
    assert jvm.functions is jvm.functions and sent == []   # a class found through PySpark's imports, kept
    df = spark.createDataFrame([(1, "a"), (2, "b")], "n int, s string")
    assert [r[0] for r in df.select(F.concat(F.col("s"), F.lit("!"))).collect()] == ["a!", "b!"]


def test_the_session_options_come_from_settings_read_once(monkeypatch):
    """RECON_SPARK_* are read by Settings when it is made (jobs/settings.py), not by jobs.spark at import or call."""
    from jobs.settings import Settings
    from jobs.spark import session_options

    monkeypatch.setenv("RECON_SPARK_SHUFFLE_PARTITIONS", "3")
    monkeypatch.setenv("RECON_SPARK_CONF", "spark.sql.adaptive.enabled=true, spark.ui.enabled = true")
    settings = Settings()
    monkeypatch.setenv("RECON_SPARK_SHUFFLE_PARTITIONS", "99")              # after the settings were made
    opts = session_options(settings)
    assert opts["spark.sql.shuffle.partitions"] == "3"
    assert opts["spark.sql.adaptive.enabled"] == "true" and opts["spark.ui.enabled"] == "true"
    assert session_options(settings.with_(spark_conf=""))["spark.ui.enabled"] == "false"
    glue = session_options(settings.with_(spark_mode="glue"))
    assert "spark.sql.shuffle.partitions" not in glue and "spark.jars" not in glue     # the runtime's own


LOCAL_SCHEMA = ("name string not null, day date, at timestamp, amount decimal(18,2), big bigint, small int, "
                "legs array<struct<entry_no: int, account: string>>, ids array<string>, ok boolean")


def test_a_frame_of_python_rows_is_a_local_relation_with_the_same_rows(spark):
    """``local_frame`` gives what ``createDataFrame`` gives (every type the project's small frames use, text
    with a quote and a line break), planned as a local table: no Python worker reads it."""
    import datetime as dt
    from decimal import Decimal

    from jobs.spark import local_frame

    rows = [("x", dt.date(2026, 11, 19), dt.datetime(2026, 11, 19, 10, 1, 2, 123456, tzinfo=dt.timezone.utc),
             Decimal("-12.34"), 2 ** 40, 7, [(1, "cash"), (2, None)], ["p", "q"], True),
            ("y\n\"z", None, None, None, None, None, [], None, False)]
    made = local_frame(spark, rows, LOCAL_SCHEMA)
    assert made.collect() == spark.createDataFrame(rows, LOCAL_SCHEMA).collect()
    assert made.schema == spark.createDataFrame(rows, LOCAL_SCHEMA).schema
    plan = made.filter("ok")._jdf.queryExecution().executedPlan().toString()
    assert "LocalTableScan" in plan and "Python" not in plan and "ExistingRDD" not in plan
    empty = local_frame(spark, [], LOCAL_SCHEMA)
    assert empty.count() == 0 and empty.schema == made.schema


def test_a_frame_of_python_rows_refuses_a_wrong_value(spark):
    from py4j.protocol import Py4JJavaError

    from jobs.spark import local_frame

    with pytest.raises(ValueError, match="name: this field is not nullable"):
        local_frame(spark, [(None, None, None, None, None, None, None, None, None)], LOCAL_SCHEMA)
    with pytest.raises(ValueError, match="2 values for 9 fields"):
        local_frame(spark, [("x", None)], LOCAL_SCHEMA)
    with pytest.raises(Py4JJavaError, match="Cannot parse the field name 'big'"):
        local_frame(spark, [("x", None, None, None, "many", None, None, None, None)], LOCAL_SCHEMA)
