"""The one SparkSession factory, for local runs, tests and the cluster runtimes.

``local``: a local[*] session whose Delta Lake and S3 (s3a) support comes from the jars that
``python3 -m jobs.localenv.jars`` fetched into ``.local/jars``, next to the project's own JVM functions
jar it compiled. Anywhere else (EMR, EMR Serverless, Glue) the runtime provides Delta and S3, so only
the session options are set; the JVM functions jar comes with the job (``make package``, ``--jars``).
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from py4j.java_gateway import JavaClass, JavaMember, JavaPackage, JVMView

from jobs.settings import ConfigurationError, Settings, load_settings

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

DELTA_OPTIONS = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}
COMMON_OPTIONS = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "false",
    "spark.sql.legacy.timeParserPolicy": "CORRECTED",
    "spark.databricks.delta.schema.autoMerge.enabled": "false",
    # Compiled query code is cached by its source. A day's run plans thousands of distinct projections,
    # predicates and stages, and the default cache (100 entries) evicts them before the next run or test in the
    # same session reuses them, so every repeat compiled again: Janino and code generation were a third
    # of the driver JVM's samples in a JFR profile. Measured on tests/data/slice, three runs in one session
    # (runs 2 and 3), in pairs: 39.7 / 36.8 s -> 31.4 / 29.8 s, and 49.1 / 49.2 -> 36.6 / 36.9 s (a busier
    # hour); heap after a full GC 520 -> 749 MB.
    "spark.sql.codegen.cache.maxEntries": "5000",
}
LOCAL_OPTIONS = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.default.parallelism": "4",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.adaptive.coalescePartitions.enabled": "true",
    "spark.serializer": "org.apache.spark.serializer.KryoSerializer",
    "spark.driver.extraJavaOptions": "-Dderby.system.home=/tmp -XX:+UseParallelGC",
    "spark.sql.warehouse.dir": "",
}


def local_jars(settings: Settings) -> list[str]:
    jars = sorted(str(p) for p in settings.jars_dir.glob("*.jar"))
    if not any("delta-spark" in j for j in jars):
        raise ConfigurationError(
            f"Delta Lake jars not found in {settings.jars_dir}: run `make setup` "
            "(or `python3 -m jobs.localenv.jars`) to fetch them from Maven Central"
        )
    from jobs.localenv.jars import udf_jar_name

    if not (settings.jars_dir / udf_jar_name()).exists():
        raise ConfigurationError(
            f"the project's JVM functions jar {udf_jar_name()} is not in {settings.jars_dir} (it is missing or "
            "older than jobs/jvm): run `make setup` (or `.venv/bin/python -m jobs.localenv.jars`)")
    return jars


def s3a_options(settings: Settings) -> dict[str, str]:
    """Options for s3a:// lakes; an explicit endpoint (moto, MinIO) switches to path-style access."""
    opts = {"spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem"}
    if settings.s3_endpoint_url:
        opts.update({
            "spark.hadoop.fs.s3a.endpoint": settings.s3_endpoint_url,
            "spark.hadoop.fs.s3a.path.style.access": "true",
            "spark.hadoop.fs.s3a.connection.ssl.enabled": str(settings.s3_endpoint_url.startswith("https")).lower(),
            "spark.hadoop.fs.s3a.aws.credentials.provider":
                "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider,"
                "com.amazonaws.auth.EnvironmentVariableCredentialsProvider",
        })
        for env, key in (("AWS_ACCESS_KEY_ID", "access.key"), ("AWS_SECRET_ACCESS_KEY", "secret.key")):
            if os.environ.get(env):
                opts[f"spark.hadoop.fs.s3a.{key}"] = os.environ[env]
    # Delta on S3: single-writer-per-table log store (the DAG runs one writer per table and tenant).
    opts["spark.delta.logStore.s3a.impl"] = "io.delta.storage.S3SingleDriverLogStore"
    return opts


def session_options(settings: Settings, extra: dict[str, str] | None = None) -> dict[str, str]:
    opts = {**DELTA_OPTIONS, **COMMON_OPTIONS}
    if settings.spark_mode == "local":
        opts.update(LOCAL_OPTIONS)
        opts["spark.jars"] = ",".join(local_jars(settings))
        opts["spark.driver.memory"] = settings.spark_driver_memory
        opts["spark.sql.shuffle.partitions"] = settings.spark_shuffle_partitions
        opts["spark.sql.warehouse.dir"] = str(settings.jars_dir.parent / "spark-warehouse")
    if settings.lake_is_s3 or settings.s3_endpoint_url:
        opts.update(s3a_options(settings))
    opts.update(settings.spark_conf_options())
    opts.update(extra or {})
    return opts


def get_spark(settings: Settings | None = None, app_name: str = "psp-recon",
              extra: dict[str, str] | None = None) -> "SparkSession":
    """Build (or return the running) SparkSession for this process."""
    settings = settings or load_settings()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", os.environ.get("PYSPARK_PYTHON") or __import__("sys").executable)
    from pyspark.sql import SparkSession

    _forget_dead_session()
    builder = SparkSession.builder.appName(app_name)
    if settings.spark_mode == "local":
        builder = builder.master(settings.spark_master)
    for key, value in session_options(settings, extra).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    cache_jvm_lookups(spark.sparkContext._jvm)
    spark.sparkContext.setLogLevel(settings.spark_log_level)
    _quiet(spark, QUIET_LOGGERS)
    register_functions(spark)
    return spark


def cache_jvm_lookups(jvm) -> None:
    """Keep what the gateway's JVM view resolves (idempotent). PySpark looks a JVM class up by name for
    every call of ``pyspark.sql.functions`` (``sc._jvm.functions.col``...): py4j asks the JVM, which tries
    ``Class.forName`` on the bare name and then under each imported package, every miss a walk over the
    ~250 jars of the classpath, and then asks again for the static method. A day's run makes thousands of
    such calls. Names that resolved to a class, a static method or a package are kept on the Python
    objects, so the next lookup is an attribute read; static field values are not kept (they are read
    from the JVM each time). A package is kept at the top level only for a lowercase name (package names
    are; class names resolved through imports may be lowercase, but those resolve as classes). Measured
    on tests/data/slice, three runs in one session, back to back: 62.2 / 32.0 / 30.0 s without, 58.4 / 28.2
    / 26.7 s with; the JVM's class-loading samples on its command threads fell from 154 of 1,015 to 22
    of 887."""
    if jvm is not None and not isinstance(jvm, _CachingJVMView):
        jvm.__class__ = _CachingJVMView


class _CachingJavaClass(JavaClass):
    def __getattr__(self, name):
        value = _caching(JavaClass.__getattr__(self, name))
        return _keep(self, name, value, isinstance(value, (JavaMember, JavaClass)))


class _CachingJavaPackage(JavaPackage):
    def __getattr__(self, name):
        value = _caching(JavaPackage.__getattr__(self, name))
        return _keep(self, name, value, isinstance(value, (JavaClass, JavaPackage)))


class _CachingJVMView(JVMView):
    def __getattr__(self, name):
        value = _caching(JVMView.__getattr__(self, name))
        keep = isinstance(value, JavaClass) or (isinstance(value, JavaPackage) and name[:1].islower())
        return _keep(self, name, value, keep)


def _caching(value):
    """py4j's class and package proxies as the subclasses above, which keep what they resolve."""
    if type(value) is JavaClass:
        value.__class__ = _CachingJavaClass
    elif type(value) is JavaPackage:
        value.__class__ = _CachingJavaPackage
    return value


def _keep(obj, name: str, value, keep: bool):
    if keep:
        obj.__dict__[name] = value      # found by the next attribute read: __getattr__ is not called again
    return value


# The project's JVM functions (jobs/jvm, compiled by ``python3 -m jobs.localenv.jars`` into
# psp-recon-udf-<hash>.jar): SQL name -> (class, return type).
JVM_FUNCTIONS = {"recon_mask_card_numbers": ("psp.recon.MaskCardNumbers", "string")}


def register_functions(spark: "SparkSession") -> None:
    """Register the project's JVM functions in the session (idempotent)."""
    for name, (class_name, return_type) in JVM_FUNCTIONS.items():
        if spark.catalog.functionExists(name):
            continue
        try:
            spark.udf.registerJavaFunction(name, class_name, return_type)
        except Exception as exc:  # noqa: BLE001 - re-raised with what to do
            raise ConfigurationError(
                f"cannot register {name} ({class_name}): the project's JVM functions jar "
                "(psp-recon-udf-*.jar, built by `make jars`) is not on the Spark classpath") from exc


def jvm_alive(sc) -> bool:
    """Whether the JVM behind a SparkContext still answers and the context is not stopped."""
    try:
        return not sc._jsc.sc().isStopped()
    except Exception:  # noqa: BLE001 - any gateway error means the JVM is gone
        return False


def _forget_dead_session() -> None:
    """A session whose JVM died (killed for memory, crashed) is dropped, so the next call starts a new
    JVM instead of handing out a session whose every call fails with "Connection refused" (a task
    retried in the same process, e.g. under ``airflow dags test``, would otherwise never recover)."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    sc = SparkContext._active_spark_context
    if sc is None or jvm_alive(sc):
        return
    log.warning("the Spark JVM of this process is gone; starting a new session")
    with SparkContext._lock:
        SparkContext._active_spark_context = None
        SparkContext._gateway = None
        SparkContext._jvm = None
    SparkSession._instantiatedSession = None
    SparkSession._activeSession = None


# Loggers whose warnings are expected here: CSV files are read with a schema named after their own
# header (see jobs.formats.csvread), which the header checker reports as a mismatch.
QUIET_LOGGERS = ("org.apache.spark.sql.catalyst.csv.CSVHeaderChecker",)


def _quiet(spark: "SparkSession", loggers: tuple[str, ...]) -> None:
    jvm = spark.sparkContext._jvm
    level = jvm.org.apache.logging.log4j.Level.ERROR
    for name in loggers:
        jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(name, level)


@contextmanager
def session_conf(spark: "SparkSession", options: dict[str, str]) -> Iterator[None]:
    """The session runs with ``options`` inside the block; each option's previous value is back after it."""
    before = {key: spark.conf.get(key, None) for key in options}
    for key, value in options.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def arrow_frame(spark: "SparkSession", frame, schema=None):
    """A Spark DataFrame of a pandas frame, sent through Arrow (not as one Python object per row)."""
    with session_conf(spark, {"spark.sql.execution.arrow.pyspark.enabled": "true"}):
        return spark.createDataFrame(frame) if schema is None else spark.createDataFrame(frame, schema)


def local_frame(spark: "SparkSession", rows, schema) -> "DataFrame":
    """A DataFrame of a few rows made in Python (tuples, dicts or Rows in ``schema``'s order; ``schema`` a
    ``StructType`` or a DDL string), held as a local relation in the JVM like a literal table.

    ``spark.createDataFrame`` of a Python list plans a Python RDD: every query that reads the frame, even an
    empty one, starts Python workers for each of its partitions (a tenth of a second a task, most of a warm
    small run's match stage where a stage joined such a frame). Here the rows go to the JVM once as JSON
    lines, are parsed there with the schema (``FAILFAST``: a value of the wrong type raises, nothing becomes
    null quietly) and collected into a local relation; an empty frame needs no job at all."""
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType, _parse_datatype_string

    struct = schema if isinstance(schema, StructType) else _parse_datatype_string(schema)
    jvm, jsession = spark.sparkContext._jvm, spark._jsparkSession
    jschema = jvm.org.apache.spark.sql.types.DataType.fromJson(struct.json())
    rows = list(rows)
    if not rows:
        return DataFrame(jsession.createDataFrame(jvm.java.util.ArrayList(), jschema), spark)
    lines = [json.dumps(_json_value(row, struct, ()), ensure_ascii=False) for row in rows]
    parsed = (jsession.read().schema(jschema).option("mode", "FAILFAST")
              .json(jsession.createDataset(lines, jvm.org.apache.spark.sql.Encoders.STRING())))
    return DataFrame(jsession.createDataFrame(parsed.collectAsList(), jschema), spark)


def _json_value(value, data_type, path: tuple[str, ...]):
    """``value`` of ``data_type`` as the JSON Spark's reader parses back to the same value (decimals as
    text, dates and times in ISO form); a null where the schema forbids one raises, as
    ``createDataFrame`` does."""
    from pyspark.sql.types import ArrayType, DateType, DecimalType, MapType, StructType, TimestampType

    if value is None:
        return None
    if isinstance(data_type, StructType):
        if hasattr(value, "asDict"):
            value = value.asDict()
        if not isinstance(value, dict) and len(value) != len(data_type.fields):
            raise ValueError(f"{'.'.join(path) or 'row'}: {len(value)} values for {len(data_type.fields)} fields")
        fields = value if isinstance(value, dict) else dict(zip(data_type.names, value))
        out = {}
        for f in data_type.fields:
            item = fields.get(f.name)
            if item is None and not f.nullable:
                raise ValueError(f"field {'.'.join(path + (f.name,))}: this field is not nullable, but got None")
            out[f.name] = _json_value(item, f.dataType, path + (f.name,))
        return out
    if isinstance(data_type, ArrayType):
        return [_json_value(v, data_type.elementType, path) for v in value]
    if isinstance(data_type, MapType):
        return {k: _json_value(v, data_type.valueType, path) for k, v in value.items()}
    if isinstance(data_type, DecimalType):
        return str(value)
    if isinstance(data_type, (DateType, TimestampType)):
        return value.isoformat()
    return value
