"""Where things live and where Spark runs: every environment switch in one place.

Resolution order for each setting: explicit argument > environment variable > project-local default.

| setting            | environment variable      | default (laptop / CI)                    |
|--------------------|---------------------------|------------------------------------------|
| lake location      | RECON_LAKE                | <repo>/.local/lake  (``s3://bucket/prefix`` in production) |
| operational DB     | RECON_DATABASE_URL        | the URL in <repo>/.local/pg/url (throwaway server): the application's login, a member of ``recon_app`` (row-level security applies; a superuser or BYPASSRLS login is refused) |
| DB migrations      | RECON_DATABASE_ADMIN_URL  | the URL in <repo>/.local/pg/admin_url when RECON_DATABASE_URL is unset too: the tables' owner, for migrations only (without it a process checks that the schema is current) |
| Spark runtime      | RECON_SPARK_MODE          | ``local``; also ``emr_serverless``, ``emr``, ``glue`` |
| Spark jars         | RECON_JARS_DIR            | <repo>/.local/jars                      |
| tenant config      | RECON_TENANT_CONFIG_DIR   | jobs/conf/tenants (package data)         |
| local Spark memory | RECON_SPARK_DRIVER_MEMORY | 6g                                       |
| local Spark        | RECON_SPARK_MASTER, RECON_SPARK_SHUFFLE_PARTITIONS | ``local[*]``, 8            |
| Spark options      | RECON_SPARK_CONF          | unset; ``key=value,key=value`` added to (or replacing) the session's options |
| Spark log level    | RECON_SPARK_LOG_LEVEL     | WARN                                     |
| S3 endpoint        | RECON_S3_ENDPOINT_URL     | unset (AWS); set for moto or MinIO       |
| small run (rows)   | RECON_SMALL_RUN_ROWS      | 25000: a run with at most this many open items keeps its intermediate results in the driver (``lake.small_data``) |
| PII salt secrets   | RECON_PII_SALT_SECRET_PREFIX | unset; ``<prefix><tenant>`` names each tenant's salt in AWS Secrets Manager (required outside ``local``) |
| local secrets      | RECON_SECRETS_DIR         | <repo>/.local/secrets (``local`` mode only: a random salt per tenant, created once; its evidence signing key too) |
| run metrics        | RECON_STATSD_HOST, RECON_STATSD_PORT, RECON_STATSD_PREFIX | unset (no export), 8125, psp_recon: where the worker sends each run's figures as StatsD gauges (``jobs.metrics``) |
| time travel        | RECON_TIME_TRAVEL_DAYS    | 30: the weekly VACUUM keeps every file a version of this many days needs (``jobs.maintenance``) |
| evidence key       | RECON_EVIDENCE_KEY_SECRET_PREFIX | unset; each tenant's Ed25519 key that signs its evidence packs is the Secrets Manager secret ``<prefix><tenant>`` (the raw private key, base64); required outside ``local`` |
| AWS API endpoint   | RECON_AWS_ENDPOINT_URL    | unset (AWS); set for moto (Secrets Manager, EMR, Glue) |
| drop folder        | RECON_INBOX               | unset; ``<inbox>/<tenant>`` is what the DAG's land task lands without a ``landing`` |
| platform admins    | RECON_PLATFORM_ADMINS     | unset; the people (comma-separated) who may grant roles for any tenant: how a tenant gets its first admin |
| raw zone key       | RECON_RAW_KMS_KEY_ID      | unset; on S3, the KMS key the raw zone's objects are encrypted with (files as delivered may hold card numbers; Terraform's raw key, usable only by landing and parsing) |
| database secret    | RECON_DATABASE_SECRET     | unset; an AWS Secrets Manager secret holding the database URL (or RDS's JSON: host, port, username, password, dbname), read when RECON_DATABASE_URL is unset (remote jobs) |
| remote jobs        | RECON_EMR_SERVERLESS_APP_ID, RECON_EMR_EXECUTION_ROLE_ARN, RECON_EMR_CLUSTER_ID, RECON_GLUE_JOB_NAME | the application, role, cluster or Glue job of the mode (``jobs.remote``) |
| job code           | RECON_CODE_URI, RECON_ENTRY_URI, RECON_UDF_JAR_URI | where ``make package``'s archive, entry script and JVM functions jar were uploaded |
| Airflow AWS connection | RECON_AWS_CONN_ID     | ``aws_default``: the connection the DAG's EMR / Glue operators use |
| remote waits       | RECON_REMOTE_POLL_SECONDS, RECON_REMOTE_MAX_WAIT_MINUTES | 30, 360: how often a waiting task polls a job and how long it waits |
| analysts' catalog  | RECON_GLUE_DATABASE, RECON_ATHENA_WORKGROUP | unset; where ``recon catalog sync`` registers the lake's tables and creates the views |
| Redshift Spectrum  | RECON_DELTA_SYMLINK_MANIFESTS, RECON_SPECTRUM_GLUE_DATABASE | false, unset: Delta tables keep symlink manifests (no deletion vectors); the Glue database of their Spectrum tables |
| ingestion          | RECON_S3_CONN_ID, RECON_ALERT_CONN_IDS, RECON_WEBHOOK_HOST, RECON_WEBHOOK_PORT, RECON_ACTOR | unset (boto3's credentials), unset, 127.0.0.1, 8090, the OS user: the Airflow connection S3 is reached through, the default alert channels, the webhook receiver's address, who the connector commands record |
| SSO (OpenID Connect) | RECON_OIDC_ISSUER, RECON_OIDC_CLIENT_ID, RECON_OIDC_CLIENT_SECRET, RECON_SSO_GROUP_ROLES | unset: the identity provider the FAB auth manager signs people in through (``infra/airflow/webserver_config.py``), its client, and the Airflow roles (JSON: group -> list of roles) each of its groups gives; unset issuer: FAB's own user database |
| DAG retries        | RECON_RECONCILE_RETRIES, RECON_RECONCILE_RETRY_DELAY_SECONDS; RECON_INGEST_RETRIES, RECON_INGEST_RETRY_DELAY_SECONDS | 2, 300; 3, 120 (exponential backoff from there) |
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
LOCAL_DIR = Path(os.environ.get("RECON_LOCAL_DIR", PROJECT_ROOT / ".local"))
SPARK_MODES = ("local", "emr_serverless", "emr", "glue")


class ConfigurationError(RuntimeError):
    """A setting is missing or wrong; the message says which and how to fix it."""


# The tenant id rule of the database (``tenant.tenant_id`` CHECK in sql/migrations/V001__core.sql; a test
# keeps the two equal): tenant ids name lake partitions, raw-zone folders and configuration files.
TENANT_ID_PATTERN = r"^[a-z][a-z0-9_]{1,62}$"
TENANT_ID_RULE = "2-63 characters: lower-case letters, digits and '_', starting with a letter"


def check_tenant_id(tenant_id: str) -> str:
    """``tenant_id`` if it is a valid tenant id, else a ConfigurationError saying which ids are allowed."""
    if not isinstance(tenant_id, str) or not re.fullmatch(TENANT_ID_PATTERN, tenant_id):
        raise ConfigurationError(f"invalid tenant id {tenant_id!r}: a tenant id has {TENANT_ID_RULE} "
                                 "(e.g. acme, acme_eu)")
    return tenant_id


def _optional(name: str):
    """The default of a setting that is unset unless the environment names it (an empty value is unset)."""
    return lambda: os.environ.get(name) or None


def _json_object(name: str) -> dict:
    text = os.environ.get(name) or "{}"
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(isinstance(v, list) for v in value.values()):
        raise ConfigurationError(f"{name} must be a JSON object of lists, e.g. {{\"recon-operators\": [\"Viewer\", "
                                 f"\"Reconciliation\"]}} (got {text[:80]!r})")
    return value


def _database_url_from_local_server(name: str = "url") -> str | None:
    url_file = LOCAL_DIR / "pg" / name
    return url_file.read_text().strip() if url_file.exists() else None


def _database_admin_url() -> str | None:
    """The owner's URL: ``RECON_DATABASE_ADMIN_URL``; the project's own server's only when the application's URL is
    its too (a worker given only ``RECON_DATABASE_URL`` does not migrate: it checks the schema)."""
    if os.environ.get("RECON_DATABASE_ADMIN_URL"):
        return os.environ["RECON_DATABASE_ADMIN_URL"]
    return None if os.environ.get("RECON_DATABASE_URL") else _database_url_from_local_server("admin_url")


@dataclass(frozen=True)
class Settings:
    lake: str = field(default_factory=lambda: os.environ.get("RECON_LAKE", str(LOCAL_DIR / "lake")))
    database_url: str | None = field(
        default_factory=lambda: os.environ.get("RECON_DATABASE_URL") or _database_url_from_local_server()
    )
    database_admin_url: str | None = field(default_factory=lambda: _database_admin_url())
    spark_mode: str = field(default_factory=lambda: os.environ.get("RECON_SPARK_MODE", "local"))
    jars_dir: Path = field(default_factory=lambda: Path(os.environ.get("RECON_JARS_DIR", LOCAL_DIR / "jars")))
    tenant_config_dir: Path = field(
        default_factory=lambda: Path(os.environ.get("RECON_TENANT_CONFIG_DIR", PACKAGE_DIR / "conf" / "tenants"))
    )
    spark_driver_memory: str = field(default_factory=lambda: os.environ.get("RECON_SPARK_DRIVER_MEMORY", "6g"))
    spark_master: str = field(default_factory=lambda: os.environ.get("RECON_SPARK_MASTER", "local[*]"))
    spark_shuffle_partitions: str = field(
        default_factory=lambda: os.environ.get("RECON_SPARK_SHUFFLE_PARTITIONS", "8"))
    spark_conf: str = field(default_factory=lambda: os.environ.get("RECON_SPARK_CONF", ""))
    spark_log_level: str = field(default_factory=lambda: os.environ.get("RECON_SPARK_LOG_LEVEL", "WARN"))
    s3_endpoint_url: str | None = field(default_factory=_optional("RECON_S3_ENDPOINT_URL"))
    small_run_rows: int = field(default_factory=lambda: int(os.environ.get("RECON_SMALL_RUN_ROWS", "25000")))
    pii_salt_secret_prefix: str | None = field(default_factory=_optional("RECON_PII_SALT_SECRET_PREFIX"))
    secrets_dir: Path = field(default_factory=lambda: Path(os.environ.get("RECON_SECRETS_DIR", LOCAL_DIR / "secrets")))
    evidence_key_secret_prefix: str | None = field(default_factory=_optional("RECON_EVIDENCE_KEY_SECRET_PREFIX"))
    time_travel_days: int = field(default_factory=lambda: int(os.environ.get("RECON_TIME_TRAVEL_DAYS", "30")))
    statsd_host: str | None = field(default_factory=_optional("RECON_STATSD_HOST"))
    statsd_port: int = field(default_factory=lambda: int(os.environ.get("RECON_STATSD_PORT", "8125")))
    statsd_prefix: str = field(default_factory=lambda: os.environ.get("RECON_STATSD_PREFIX", "psp_recon"))
    aws_endpoint_url: str | None = field(default_factory=_optional("RECON_AWS_ENDPOINT_URL"))
    inbox: Path | None = field(default_factory=lambda: Path(os.environ["RECON_INBOX"]) if os.environ.get("RECON_INBOX")
                               else None)
    database_secret: str | None = field(default_factory=_optional("RECON_DATABASE_SECRET"))
    raw_kms_key_id: str | None = field(default_factory=_optional("RECON_RAW_KMS_KEY_ID"))
    emr_serverless_app_id: str | None = field(default_factory=_optional("RECON_EMR_SERVERLESS_APP_ID"))
    emr_execution_role_arn: str | None = field(default_factory=_optional("RECON_EMR_EXECUTION_ROLE_ARN"))
    emr_cluster_id: str | None = field(default_factory=_optional("RECON_EMR_CLUSTER_ID"))
    glue_job_name: str | None = field(default_factory=_optional("RECON_GLUE_JOB_NAME"))
    code_uri: str | None = field(default_factory=_optional("RECON_CODE_URI"))
    entry_uri: str | None = field(default_factory=_optional("RECON_ENTRY_URI"))
    udf_jar_uri: str | None = field(default_factory=_optional("RECON_UDF_JAR_URI"))
    aws_conn_id: str = field(default_factory=lambda: os.environ.get("RECON_AWS_CONN_ID", "aws_default"))
    remote_poll_seconds: int = field(default_factory=lambda: int(os.environ.get("RECON_REMOTE_POLL_SECONDS", "30")))
    remote_max_wait_minutes: int = field(
        default_factory=lambda: int(os.environ.get("RECON_REMOTE_MAX_WAIT_MINUTES", "360")))
    delta_symlink_manifests: bool = field(
        default_factory=lambda: os.environ.get("RECON_DELTA_SYMLINK_MANIFESTS", "false").lower() in ("1", "true", "yes"))
    spectrum_glue_database: str | None = field(default_factory=_optional("RECON_SPECTRUM_GLUE_DATABASE"))
    glue_database: str | None = field(default_factory=_optional("RECON_GLUE_DATABASE"))
    athena_workgroup: str | None = field(default_factory=_optional("RECON_ATHENA_WORKGROUP"))
    s3_conn_id: str | None = field(default_factory=_optional("RECON_S3_CONN_ID"))
    alert_conn_ids: tuple[str, ...] = field(default_factory=lambda: tuple(
        c.strip() for c in os.environ.get("RECON_ALERT_CONN_IDS", "").split(",") if c.strip()))
    webhook_host: str = field(default_factory=lambda: os.environ.get("RECON_WEBHOOK_HOST", "127.0.0.1"))
    webhook_port: int = field(default_factory=lambda: int(os.environ.get("RECON_WEBHOOK_PORT", "8090")))
    actor: str | None = field(default_factory=_optional("RECON_ACTOR"))
    platform_admins: tuple[str, ...] = field(default_factory=lambda: tuple(
        u.strip() for u in os.environ.get("RECON_PLATFORM_ADMINS", "").split(",") if u.strip()))
    oidc_issuer: str | None = field(default_factory=_optional("RECON_OIDC_ISSUER"))
    oidc_client_id: str | None = field(default_factory=_optional("RECON_OIDC_CLIENT_ID"))
    oidc_client_secret: str | None = field(default_factory=_optional("RECON_OIDC_CLIENT_SECRET"), repr=False)
    sso_group_roles: dict = field(default_factory=lambda: _json_object("RECON_SSO_GROUP_ROLES"))
    reconcile_retries: int = field(default_factory=lambda: int(os.environ.get("RECON_RECONCILE_RETRIES", "2")))
    reconcile_retry_delay_seconds: float = field(
        default_factory=lambda: float(os.environ.get("RECON_RECONCILE_RETRY_DELAY_SECONDS", "300")))
    ingest_retries: int = field(default_factory=lambda: int(os.environ.get("RECON_INGEST_RETRIES", "3")))
    ingest_retry_delay_seconds: float = field(
        default_factory=lambda: float(os.environ.get("RECON_INGEST_RETRY_DELAY_SECONDS", "120")))

    def __post_init__(self) -> None:
        if self.spark_mode not in SPARK_MODES:
            raise ConfigurationError(f"RECON_SPARK_MODE={self.spark_mode!r} is not one of {', '.join(SPARK_MODES)}")

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)

    def require_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        if self.database_secret:
            from jobs.secrets import database_url_from_secret

            return database_url_from_secret(self.database_secret, self.aws_endpoint_url)
        raise ConfigurationError(
            "no PostgreSQL configured: set RECON_DATABASE_URL (or RECON_DATABASE_SECRET), or start the project's "
            "own server with `make pg` (python3 -m jobs.localenv.postgres start)"
        )

    def require_database_admin_url(self) -> str:
        if self.database_admin_url:
            return self.database_admin_url
        raise ConfigurationError(
            "no database owner configured for migrations: set RECON_DATABASE_ADMIN_URL (the role that owns the tables; "
            "the application's RECON_DATABASE_URL may not create them), or start the project's own server with `make pg`"
        )

    @property
    def has_database(self) -> bool:
        return bool(self.database_url or self.database_secret)

    def spark_conf_options(self) -> dict[str, str]:
        """``RECON_SPARK_CONF`` (``key=value,key=value``) as Spark options."""
        pairs = (item.partition("=") for item in self.spark_conf.split(",") if item.strip())
        return {key.strip(): value.strip() for key, _, value in pairs}

    def inbox_of(self, tenant_id: str) -> Path | None:
        """The folder the DAG's land task lands a tenant's dropped files from when no ``landing`` is given."""
        return self.inbox / tenant_id if self.inbox else None

    @property
    def lake_is_s3(self) -> bool:
        return self.lake.startswith(("s3://", "s3a://"))

    def lake_path(self, *parts: str) -> str:
        """A location inside the lake, as Spark wants it (``s3a://`` for S3)."""
        base = self.lake.rstrip("/")
        if base.startswith("s3://"):
            base = "s3a://" + base[len("s3://"):]
        return "/".join([base, *parts])


def load_settings(**overrides) -> Settings:
    settings = Settings()
    return settings.with_(**{k: v for k, v in overrides.items() if v is not None}) if overrides else settings
