"""Entry point for spark-submit on EMR / EMR Serverless / Glue.

The job code arrives as ``psp_recon_jobs.zip`` (``--py-files``, built by ``make package``). It holds the
``jobs`` package and the ``sql`` folder; it is unpacked next to the driver so the package reads its
SQL and configuration files as ordinary files, then ``jobs.cli.main`` runs the requested command with the
runtime's own Spark and Delta.

Arguments: ``--recon_job '<JSON>'`` as the submitters write it (``jobs/runner.py``, ``job_payload``):
``{"argv": [CLI arguments], "env": {RECON_* settings}}``; ``env`` holds the Spark mode
(``RECON_SPARK_MODE``, the mode the job was submitted in) and the other settings a job needs
(e.g. ``RECON_PII_SALT_SECRET_PREFIX``), never a secret. The CLI's arguments travel as one JSON value
because Glue hands a script its job arguments as ``--name value`` pairs among its own (``--JOB_ID``,
``--JOB_RUN_ID``, ``--job-bookmark-option``, ...): everything else is ignored. Without ``--recon_job``
the arguments are the CLI's own (a manual ``spark-submit recon_entry.py stage parse ...``).
"""
import json
import os
import sys
import tempfile
import zipfile

ARCHIVE = "psp_recon_jobs.zip"
OPTION = "--recon_job"


def job_arguments(argv):
    """(settings to export, the CLI's arguments) from the script's arguments."""
    for i, arg in enumerate(argv):
        key, eq, value = arg.partition("=")
        if key != OPTION:
            continue
        if not eq:
            if i + 1 >= len(argv):
                raise SystemExit(f"{OPTION} needs a value")
            value = argv[i + 1]
        try:
            job = json.loads(value)
        except ValueError as exc:
            raise SystemExit(f"{OPTION} is not JSON: {exc}") from None
        cli, env = (job.get("argv"), job.get("env", {})) if isinstance(job, dict) else (None, None)
        if not (isinstance(cli, list) and all(isinstance(a, str) for a in cli) and isinstance(env, dict)
                and all(isinstance(k, str) and k.startswith("RECON_") and isinstance(v, str) for k, v in env.items())):
            raise SystemExit(f'{OPTION} must be {{"argv": [strings], "env": {{"RECON_...": string}}}}')
        return env, cli
    return {}, list(argv)


def _unpack() -> str:
    candidates = [os.path.join(os.getcwd(), ARCHIVE), os.path.join(os.path.dirname(os.path.abspath(__file__)), ARCHIVE)]
    candidates += [p for p in sys.path if p.endswith(ARCHIVE)]
    for path in candidates:
        if os.path.isfile(path):
            target = tempfile.mkdtemp(prefix="psp-recon-")
            with zipfile.ZipFile(path) as archive:
                archive.extractall(target)
            return target
    raise SystemExit(f"{ARCHIVE} not found (pass it with --py-files)")


if __name__ == "__main__":
    env, cli = job_arguments(sys.argv[1:])
    os.environ.update(env)
    sys.path.insert(0, _unpack())
    import jobs
    from jobs.cli import main

    print(f"psp-recon: jobs from {os.path.dirname(jobs.__file__)}", file=sys.stderr)   # in the job's log

    sys.exit(main(cli))
