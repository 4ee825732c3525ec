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
"""


def test_a_session_whose_jvm_died_is_replaced(tmp_path):
    out = subprocess.run([sys.executable, "-c", CODE.format(lake=str(tmp_path / "lake"))], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "dead:" in out.stdout and "alive again: 5" in out.stdout
