"""Entry point for spark-submit on EMR / EMR Serverless / Glue: ``recon_entry.py stage <name> --tenant ...``.

The job code arrives as ``psp_recon_jobs.zip`` (``--py-files``, built by ``make package``). It holds the
``jobs`` package and the ``sql`` folder; it is unpacked next to the driver so the package reads its
SQL and configuration files as ordinary files, then ``jobs.cli.main`` runs the requested stage with the
runtime's own Spark and Delta (``RECON_SPARK_MODE`` is set to the cluster mode by the caller).
"""
import os
import sys
import tempfile
import zipfile

ARCHIVE = "psp_recon_jobs.zip"


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
    sys.path.insert(0, _unpack())
    os.environ.setdefault("RECON_SPARK_MODE", "emr_serverless")
    from jobs.cli import main

    sys.exit(main(sys.argv[1:]))
