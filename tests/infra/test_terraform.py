"""The deployment's Terraform (infra/terraform): formatted, parsed (python-hcl2) and checked for what this deployment
promises (private network, the database reachable only from the jobs and Airflow, encryption, backups, every setting
the remote jobs need in the output Airflow reads), and checkov's policies: every finding fixed or skipped in the code
with its reason. Nothing here calls AWS or the Terraform registry."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
TF = ROOT / "infra" / "terraform"
CHECKOV = ROOT / ".local" / "checkov" / "bin" / "checkov"


def _clean(value):
    """python-hcl2 keeps HCL's quotes on keys and strings: drop them."""
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


@pytest.fixture(scope="module")
def tf() -> dict:
    """{"resource": {type: {name: body}}, "data": ..., "output": {name: body}, "variable": ...} over every file."""
    import hcl2

    out: dict = {}
    for path in sorted(TF.glob("*.tf")):
        with path.open() as f:
            parsed = _clean(hcl2.load(f))
        for kind, blocks in parsed.items():
            for block in blocks:
                for key, body in block.items():
                    if kind in ("resource", "data"):
                        for name, inner in body.items():
                            out.setdefault(kind, {}).setdefault(key, {})[name] = inner
                    else:
                        out.setdefault(kind, {})[key] = body
    return out


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed on this machine")
def test_terraform_is_formatted():
    result = subprocess.run(["terraform", "fmt", "-check", "-recursive", str(TF)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_reference_names_a_declared_resource_variable_or_data_source(tf):
    text = "\n".join(p.read_text() for p in TF.glob("*.tf"))
    declared = {f"{t}.{n}" for t, names in tf["resource"].items() for n in names}
    for ref in set(re.findall(r"\b(aws_[a-z0-9_]+)\.([a-z0-9_]+)\b", text)):
        if not ref[0].startswith("aws_iam_policy_document") and f"{ref[0]}.{ref[1]}" not in declared:
            # data sources are referenced as data.<type>.<name>
            assert ref[1] in tf.get("data", {}).get(ref[0], {}), f"{ref[0]}.{ref[1]} is not declared"
    for var in set(re.findall(r"\bvar\.([a-z0-9_]+)", text)):
        assert var in tf["variable"], f"var.{var} is not declared"
    for name in set(re.findall(r"data\.aws_iam_policy_document\.([a-z0-9_]+)", text)):
        assert name in tf["data"]["aws_iam_policy_document"], name


def test_the_output_airflow_reads_has_every_setting_a_remote_mode_needs(tf):
    from jobs import remote

    env = tf["output"]["recon_environment"]["value"]
    needed = {remote.SETTING_ENV[s] for mode in remote.REQUIRED for s in remote.REQUIRED[mode]
              if mode != "emr"}                              # the EMR cluster (mode emr) is not created here
    needed |= {remote.SETTING_ENV[s] for s in ("code_uri", "entry_uri", "udf_jar_uri", "pii_salt_secret_prefix")}
    needed |= {"RECON_LAKE", "RECON_SPARK_MODE", "RECON_DATABASE_SECRET", "RECON_GLUE_DATABASE",
               "RECON_ATHENA_WORKGROUP"}
    assert needed <= set(env), needed - set(env)
    code = tf["resource"]["aws_glue_job"]["stages"]["command"][0]["script_location"]
    assert code == env["RECON_ENTRY_URI"]                     # the Glue job's script is the entry Airflow names


def test_the_network_keeps_the_database_and_the_jobs_private(tf):
    r = tf["resource"]
    db = r["aws_db_instance"]["recon"]
    assert db["multi_az"] is True and db["publicly_accessible"] is False and db["storage_encrypted"] is True
    assert db["backup_retention_period"] >= 7 and db["deletion_protection"] is True    # point-in-time recovery
    assert db["vpc_security_group_ids"] == ["${aws_security_group.database.id}"]
    ingress = r["aws_vpc_security_group_ingress_rule"]
    into_db = [rule for rule in ingress.values() if rule["security_group_id"] == "${aws_security_group.database.id}"]
    assert len(into_db) == 1 and into_db[0]["referenced_security_group_id"] == "${each.value}"
    assert set(into_db[0]["for_each"]) == {"jobs", "airflow"} and into_db[0]["from_port"] == 5432
    for rule in ingress.values():                             # nothing open to the internet
        assert rule.get("cidr_ipv4") not in ("0.0.0.0/0",) and rule.get("cidr_ipv6") != "::/0"
    assert "aws_internet_gateway" not in r and "aws_nat_gateway" not in r
    emr = r["aws_emrserverless_application"]["spark"]["network_configuration"][0]
    assert emr["security_group_ids"] == ["${aws_security_group.jobs.id}"]
    assert r["aws_glue_job"]["stages"]["connections"] == ["${aws_glue_connection.vpc.name}"]
    assert r["aws_redshiftserverless_workgroup"]["analysts"]["publicly_accessible"] is False
    endpoints = r["aws_vpc_endpoint"]["interface"]["for_each"]
    assert {"secretsmanager", "glue", "emr-serverless", "logs", "sts", "sns"} <= set(endpoints.strip("${}").replace(
        'toset([', '').replace('])', '').replace('"', '').replace(' ', '').split(","))


def test_card_data_at_rest_only_in_the_raw_zone_under_its_own_key_with_a_retention_limit(tf):
    r, d = tf["resource"], tf["data"]["aws_iam_policy_document"]
    use = [st for st in d["raw_key"]["statement"] if st["sid"] == "Use"][0]
    assert use["principals"][0]["identifiers"] == ["${aws_iam_role.airflow.arn}", "${aws_iam_role.job.arn}"]
    admin = [st for st in d["raw_key"]["statement"] if st["sid"] == "Administer"][0]
    assert not {a for a in admin["actions"] if a in ("kms:Decrypt", "kms:*") or a.startswith("kms:GenerateDataKey")}
    for role, doc in (("airflow", "airflow"), ("job", "job")):
        policy = d[doc]["statement"]
        assert any("${aws_kms_key.raw.arn}" in st["resources"] for st in policy), role
    assert all("${aws_kms_key.raw.arn}" not in st["resources"] for st in d["redshift"]["statement"])   # analysts
    deny = [st for st in d["lake_bucket"]["statement"] if st["sid"] == "RawZoneKeyOnly"][0]
    assert deny["effect"] == "Deny" and deny["resources"] == ["${aws_s3_bucket.lake.arn}/lake/raw/*"]
    assert deny["condition"][0]["values"] == ["${aws_kms_key.raw.arn}"]
    raw_rule = [rule for rule in r["aws_s3_bucket_lifecycle_configuration"]["lake"]["rule"]
                if rule.get("filter", [{}])[0].get("prefix") == "lake/raw/"][0]
    assert raw_rule["expiration"][0]["days"] == "${var.raw_card_data_retention_days}"
    assert tf["output"]["recon_environment"]["value"]["RECON_RAW_KMS_KEY_ID"] == "${aws_kms_key.raw.arn}"


def test_every_checkov_skip_says_why():
    skips = [m for p in TF.glob("*.tf") for m in re.findall(r"checkov:skip=([A-Z0-9_]+)(:?)(.*)", p.read_text())]
    assert skips
    for check, colon, reason in skips:
        assert colon and len(reason.strip()) >= 30, f"{check}: a skip needs its reason"


@pytest.mark.skipif(not CHECKOV.exists() and not os.environ.get("CI"),
                    reason="checkov is installed by `make setup` (.local/checkov); CI always has it")
def test_checkov_finds_nothing_unjustified():
    env = {**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "true"}
    run = subprocess.run([str(CHECKOV), "-d", str(TF), "--framework", "terraform", "--compact", "--quiet",
                          "--skip-download", "-o", "json"], capture_output=True, text=True, env=env)
    report = json.loads(run.stdout)
    summary = report["summary"]
    failed = [(f["check_id"], f["resource"], f["check_name"]) for f in report["results"]["failed_checks"]]
    assert summary["parsing_errors"] == 0 and summary["resource_count"] > 60
    assert failed == [], failed
    skips = sum(len(re.findall(r"checkov:skip=", p.read_text())) for p in TF.glob("*.tf"))
    assert summary["skipped"] == skips and summary["passed"] > 250
