"""Build the job code shipped to EMR / Glue: ``dist/psp_recon_jobs.zip`` (the ``jobs`` package without caches,
plus ``sql/``), ``dist/recon_entry.py`` and the project's JVM functions, ``dist/psp-recon-udf.jar`` (the parse
stage masks card numbers with it; ``jobs.remote`` passes it with ``--jars`` / ``--extra-jars``), and for the EMR
Serverless image ``dist/Dockerfile`` with ``dist/job-requirements.txt`` (the Python packages a job imports, pinned).

Usage: ``python3 infra/emr/build_package.py [--out dist]`` (``make package``); upload the three files to the
``RECON_CODE_URI`` / ``RECON_ENTRY_URI`` / ``RECON_UDF_JAR_URI`` locations (terraform output ``recon_environment``).
"""
import argparse
import shutil
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UDF_JAR = "psp-recon-udf.jar"
sys.path.insert(0, str(ROOT))


def build(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    archive = out / "psp_recon_jobs.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for folder in ("jobs", "sql"):
            for path in sorted((ROOT / folder).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                    zf.write(path, path.relative_to(ROOT).as_posix())
    shutil.copy2(Path(__file__).with_name("recon_entry.py"), out / "recon_entry.py")
    from jobs.localenv.jars import build_udf_jar
    from jobs.settings import load_settings

    shutil.copy2(build_udf_jar(load_settings().jars_dir), out / UDF_JAR)     # compiled once, cached with the jars
    from jobs.remote import job_requirements

    (out / "job-requirements.txt").write_text("\n".join(job_requirements()) + "\n")   # for the EMR Serverless image
    shutil.copy2(Path(__file__).with_name("Dockerfile"), out / "Dockerfile")
    return archive


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    print(build(parser.parse_args().out))
