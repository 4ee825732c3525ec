"""Shared fixtures: one PostgreSQL database per test session on the project's server (or
RECON_TEST_DATABASE_URL), one local Spark session with Delta for the whole session, a fresh lake
folder per test that needs one.

Markers (pyproject): ``spark`` needs the Spark session, ``postgres`` the database, ``e2e`` runs real
Airflow and Spark on generated days (slow; part of ``make test``).
"""
from __future__ import annotations

import os
import secrets
import shutil
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest

# Test data is tiny: one shuffle partition and no adaptive re-planning (AQE submits a job per query
# stage, which dominates at this size). Production keeps the defaults of jobs/spark.py.
os.environ.setdefault("RECON_SPARK_SHUFFLE_PARTITIONS", "1")
os.environ.setdefault("RECON_SPARK_CONF", "spark.sql.adaptive.enabled=false")
os.environ.setdefault("RECON_SPARK_DRIVER_MEMORY", "4g")
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

DATA = Path(__file__).parent / "data"


def _with_db(url: str, name: str) -> str:
    parts = urlparse(url)
    return urlunparse(parts._replace(path=f"/{name}"))


def _server_urls() -> tuple[str, str]:
    """(owner, application) URLs of the test server: ``RECON_DATABASE_ADMIN_URL`` and ``RECON_DATABASE_URL``, else
    the project's own server (``make pg``): its superuser, and ``recon_app``, subject to row-level security."""
    if os.environ.get("RECON_DATABASE_ADMIN_URL") and os.environ.get("RECON_DATABASE_URL"):
        return os.environ["RECON_DATABASE_ADMIN_URL"], os.environ["RECON_DATABASE_URL"]
    from jobs.localenv.postgres import LocalPostgres

    local = LocalPostgres()
    admin = local.start()
    return admin, local.url_file.read_text().strip()


@dataclass(frozen=True)
class TestDatabase:
    __test__ = False
    """A database of the tests: its owner's URL (create, migrate, clone) and the application's (what the code
    under test connects with: row-level security applies)."""
    admin_url: str
    url: str

    def named(self, name: str) -> "TestDatabase":
        return TestDatabase(_with_db(self.admin_url, name), _with_db(self.url, name))

    def settings(self, **kw):
        """Settings of this database; the tests' platform administrator is ``root`` (it grants tenants' first
        admins)."""
        from jobs.settings import Settings

        return Settings(database_url=self.url, database_admin_url=self.admin_url, platform_admins=("root",), **kw)


@pytest.hookimpl(tryfirst=True)           # before xdist's worker reads the groups
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (``make test`` runs ``-n 2 --dist loadgroup --no-loadscope-reorder``) a test file is one unit of work, so
    its module fixtures are built once, and every test that takes a session fixture of ``SHARED_GROUPS`` (the
    shared parse run ``formats_run``; ``slice_day``, the slice's day through ``run_all``) goes to one worker,
    so that the fixture is built once."""
    groups = {}
    for item in items:
        names = getattr(item, "fixturenames", ())
        group = next((shared for shared, members in SHARED_GROUPS.items()
                      if any(n in names for n in members) or item.nodeid.split("::")[0] in members),
                     item.nodeid.split("::")[0])
        item.add_marker(pytest.mark.xdist_group(group))
        groups[item] = group
    # The longest groups start first (``make test`` passes --no-loadscope-reorder, so the scheduler hands out
    # groups in collection order): a long group started last leaves the other worker idle until it ends.
    first = {name: rank for rank, name in enumerate(LONGEST_GROUPS_FIRST)}
    items.sort(key=lambda item: first.get(groups[item], len(first)))      # stable: the rest keep their order


# Tests that share a session fixture built once per worker run on one worker: the tests that take the fixture (or
# are in the file) of each group. The fuzz test parses every format's samples again; after ``formats_run`` the
# parsers' queries are planned, compiled and warm on that worker.
SHARED_GROUPS = {
    "formats_run": ("formats_run", "tests/formats/test_fuzz.py"),
    "slice_day": ("slice_day",),
}


# Test groups that take a minute or more, longest first (estimated from the groups' tests in a two-worker run of
# sitting 13's suite). Only the order in which the groups start depends on it.
LONGEST_GROUPS_FIRST = (
    "slice_day", "formats_run", "tests/e2e/test_reconcile_dag.py", "tests/integration/test_reasons_and_manual.py",
    "tests/remote/test_packaged_job.py", "tests/ingest/test_dag_ingest.py", "tests/unit/test_matching.py",
    "tests/unit/test_text_refs.py", "tests/remote/test_dag_remote_modes.py",
)


def pytest_xdist_node_collection_finished(node, ids):
    """The grouping must take effect: xdist passes a test's group to its scheduler as an ``@group`` suffix of
    the node id, which pytest 9.2 no longer lets it set (pytest-dev/pytest-xdist#1386). Without it the tests
    still pass, but every file's module fixtures and the shared parse run are built on each worker: stop
    the run with the reason instead of silently taking minutes longer."""
    if node.config.getoption("dist") != "loadgroup":
        return
    ungrouped = [nodeid for nodeid in ids if "@" not in nodeid.rpartition("]")[2]]
    if ungrouped:
        pytest.exit(f"--dist loadgroup: {len(ungrouped)} test(s) without their group in the node id (first: "
                    f"{ungrouped[0]}); this pytest/pytest-xdist pair does not group tests", returncode=4)


@pytest.fixture(scope="session")
def test_database() -> TestDatabase:
    """A database of its own for this session, dropped at the end (``RECON_TEST_DATABASE_URL`` with
    ``RECON_TEST_DATABASE_ADMIN_URL``: an existing one)."""
    if os.environ.get("RECON_TEST_DATABASE_URL"):
        yield TestDatabase(os.environ["RECON_TEST_DATABASE_ADMIN_URL"], os.environ["RECON_TEST_DATABASE_URL"])
        return
    import psycopg

    admin_url, app_url = _server_urls()
    name = f"recon_test_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield TestDatabase(admin_url, app_url).named(name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def migrated_database(test_database) -> TestDatabase:
    from jobs.store.migrate import migrate

    migrate(test_database.settings())
    return test_database


@pytest.fixture(scope="session")
def migrated_db(migrated_database) -> str:
    """The application's URL of the session's migrated database."""
    return migrated_database.url


@pytest.fixture
def lake(tmp_path) -> str:
    path = tmp_path / "lake"
    path.mkdir()
    return str(path)


@pytest.fixture
def tenant_id() -> str:
    """A tenant id of its own per test (tests share the session database)."""
    return f"t{secrets.token_hex(4)}"


def write_tenant_config(folder: Path, tenant: str, **overrides) -> Path:
    """The default tenant configuration (jobs/conf/tenants/acme.yaml) under another tenant id."""
    import yaml

    from jobs.settings import PACKAGE_DIR

    raw = yaml.safe_load((PACKAGE_DIR / "conf" / "tenants" / "acme.yaml").read_text())
    raw.update(tenant_id=tenant, name=f"Test tenant {tenant}", **overrides)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{tenant}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture
def settings(lake, migrated_database, tenant_id, tmp_path):
    """Settings for one test: its own lake folder and tenant, the session's migrated database."""
    write_tenant_config(tmp_path / "tenants", tenant_id)
    return migrated_database.settings(lake=lake, tenant_config_dir=tmp_path / "tenants")


_SPARK: dict = {}


def _live_spark(lake: str):
    """The shared Spark session; a new one if the JVM of the last one died (killed for memory, a fatal
    error in a task): the test it died in fails with its reason, the tests after it get a working JVM
    instead of failing one by one with "Connection refused"."""
    from jobs.settings import Settings
    from jobs.spark import get_spark, jvm_alive

    session = _SPARK.get("session")
    if session is not None and jvm_alive(session.sparkContext):
        return session
    _SPARK["session"] = get_spark(Settings(lake=lake), app_name="psp-recon-tests")
    return _SPARK["session"]


@pytest.fixture(scope="session")
def spark_lake(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("lake"))


@pytest.fixture(scope="session")
def spark_session(spark_lake):
    """The shared session for module- and session-scoped fixtures (tests take ``spark``)."""
    yield _live_spark(spark_lake)
    if _SPARK.get("session") is not None:
        _SPARK["session"].stop()


@pytest.fixture
def spark(spark_session, spark_lake):
    """The shared session. Test data is small: ``lake.materialize`` keeps its results in the driver inside
    the test (``lake.small_data``), as a small run does; the match and ledger stages decide for themselves
    from a run's size, and ``test_matching`` compares the two ways."""
    from jobs import lake

    with lake.small_data():
        yield _live_spark(spark_lake)


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory):
    """An Airflow home with its metadata database migrated, for the module's ``airflow dags test`` runs."""
    import subprocess

    from airflow_cli import airflow_env

    home = tmp_path_factory.mktemp("airflow_home")
    subprocess.run([str(Path(sys.executable).with_name("airflow")), "db", "migrate"], env=airflow_env(home),
                   check=True, capture_output=True)
    return home


@pytest.fixture(scope="session")
def aws_endpoint() -> str:
    """moto in server mode on 127.0.0.1 (S3, Secrets Manager, EMR, EMR Serverless, Glue...): a real HTTP endpoint
    for boto3, aiobotocore, Spark's s3a and the Airflow provider's hooks, with test credentials in the environment."""
    import socket

    from moto.server import ThreadedMotoServer

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ[key] = value
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def use_s3a(spark, settings) -> None:
    """The shared session was built for a local lake: give its Hadoop configuration the s3a options."""
    from jobs.spark import s3a_options

    conf = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in s3a_options(settings).items():
        if key.startswith("spark.hadoop."):
            conf.set(key[len("spark.hadoop."):], value)


@pytest.fixture(scope="session", autouse=True)
def _isolated_secrets(tmp_path_factory):
    """PII salts of test tenants live in a temporary folder, not in .local/secrets."""
    os.environ["RECON_SECRETS_DIR"] = str(tmp_path_factory.mktemp("secrets"))


def land_local(settings, tenant: str, path: Path, received_date, name: str | None = None):
    """Put a file in the raw zone the way landing does (without the manifest) and return its LandedFile."""
    from jobs import storage
    from jobs.formats.registry import detect
    from jobs.landing import LandedFile, raw_uri_for, sha256_file

    name = name or path.name
    sha = sha256_file(path)
    spec = detect(path.read_bytes()[:65536])
    source = spec.source if spec else "unknown"
    uri = raw_uri_for(settings, tenant, source, received_date, sha, name)
    storage.put_file(settings, path, uri)
    return LandedFile(tenant, sha, name, uri, spec.format_id if spec else "unknown", spec.version if spec else None,
                      source, received_date)


SLICE_DAY = date(2026, 11, 20)


@dataclass(frozen=True)
class SliceDay:
    """A test's own copy of the slice's day after ``run_all``: settings (lake folder, database, tenant
    configuration folder) of its own, the tenant, and the run's summary."""
    settings: object
    tenant_id: str
    summary: dict


@pytest.fixture(scope="session")
def _slice_day_template(tmp_path_factory, test_database, spark_session, spark_lake):
    """``tests/data/slice`` through ``run_all`` for its business day (2026-11-20), once per worker, into a lake
    folder and a database of its own: the state every ``slice_day`` copy starts from. None when the test
    database's role may not create databases (``RECON_TEST_DATABASE_URL``): each test then runs the day."""
    import psycopg

    from jobs import lake
    from jobs.pipeline import run_all

    name = f"recon_slice_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(test_database.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.errors.InsufficientPrivilege:
        yield None
        return
    root = tmp_path_factory.mktemp("slice_day")
    tenant = f"t{secrets.token_hex(4)}"
    write_tenant_config(root / "tenants", tenant)
    settings = test_database.named(name).settings(lake=str(root / "lake"), tenant_config_dir=root / "tenants")
    try:
        with lake.small_data():
            summary = run_all(settings, tenant, SLICE_DAY, DATA / "slice", "slice-day", spark=_live_spark(spark_lake))
        yield SliceDay(settings, tenant, summary)
    finally:                                      # also when the day's run fails: no database left behind
        with psycopg.connect(test_database.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def slice_day(_slice_day_template, migrated_database, spark, tmp_path) -> SliceDay:
    """The slice's day as ``run_all`` left it, a copy for this test: the template's database cloned
    (``CREATE DATABASE ... TEMPLATE``), its lake folder and tenant configuration copied, and the stored
    locations of raw files (the ``*uri`` columns) moved to the copy's lake. Tests may run later days, rerun
    the day, delete partitions or record decisions: nothing reaches the template or another test."""
    import copy

    import psycopg

    from jobs.pipeline import run_all

    template = _slice_day_template
    if template is None:
        tenant = f"t{secrets.token_hex(4)}"
        write_tenant_config(tmp_path / "tenants", tenant)
        settings = migrated_database.settings(lake=str(tmp_path / "slice_lake"), tenant_config_dir=tmp_path / "tenants")
        yield SliceDay(settings, tenant, run_all(settings, tenant, SLICE_DAY, DATA / "slice", "slice-day", spark=spark))
        return
    name = f"recon_copy_{secrets.token_hex(4)}"
    source = urlparse(template.settings.database_url).path.lstrip("/")
    with psycopg.connect(migrated_database.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    shutil.copytree(template.settings.lake, tmp_path / "slice_lake")
    shutil.copytree(template.settings.tenant_config_dir, tmp_path / "tenants")
    settings = migrated_database.named(name).settings(lake=str(tmp_path / "slice_lake"),
                                                      tenant_config_dir=tmp_path / "tenants")
    with psycopg.connect(settings.database_admin_url, autocommit=True) as conn:
        columns = conn.execute("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = "
                               "'public' AND data_type = 'text' AND column_name LIKE '%%uri'").fetchall()
        for table, column in columns:
            conn.execute(f'UPDATE "{table}" SET "{column}" = %s || substr("{column}", length(%s) + 1) '
                         f'WHERE starts_with("{column}", %s)',
                         (settings.lake, template.settings.lake, template.settings.lake))
    yield SliceDay(settings, template.tenant_id, copy.deepcopy(template.summary))
    with psycopg.connect(migrated_database.admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
