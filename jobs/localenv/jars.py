"""Fetch Spark's JVM packages (Delta Lake, hadoop-aws) from Maven Central, pinned and checksummed.

The pyspark and delta-spark wheels carry no Delta or S3 jars. Rather than letting Spark resolve them
through Ivy at every start, they are downloaded once into ``.local/jars`` and verified against the
SHA-256 sums in ``jars.lock``. A jar that is present with the right checksum is not fetched again.

The project's own JVM functions (``jobs/jvm``, e.g. the card-number masking) are compiled here too,
with the JDK's ``javac`` against the pyspark wheel's Spark jars, into ``psp-recon-udf-<hash>.jar`` (the
hash is that of the sources, so a changed source builds a new jar and an unchanged one is not rebuilt).

Usage: ``python3 -m jobs.localenv.jars [--dest DIR]`` (with the project's virtualenv: it needs pyspark)
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

LOCK_FILE = Path(__file__).with_name("jars.lock")
MAVEN_CENTRAL = os.environ.get("RECON_MAVEN_REPO", "https://repo1.maven.org/maven2")
CHUNK = 1 << 20


@dataclass(frozen=True)
class Jar:
    group: str
    artifact: str
    version: str
    sha256: str

    @property
    def file_name(self) -> str:
        return f"{self.artifact}-{self.version}.jar"

    @property
    def url(self) -> str:
        return f"{MAVEN_CENTRAL}/{self.group.replace('.', '/')}/{self.artifact}/{self.version}/{self.file_name}"


def read_lock(path: Path = LOCK_FILE) -> list[Jar]:
    jars = []
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            coords, sha = line.split()
            group, artifact, version = coords.split(":")
        except ValueError:
            raise ValueError(f"{path}:{line_no}: expected 'group:artifact:version sha256', got {line!r}") from None
        jars.append(Jar(group, artifact, version, sha.lower()))
    return jars


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(jar: Jar, dest: Path) -> Path:
    """Download one jar into ``dest`` unless a verified copy is already there."""
    target = dest / jar.file_name
    if target.exists() and sha256_of(target) == jar.sha256:
        return target
    dest.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest, prefix=f".{jar.file_name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(jar.url, timeout=120) as resp:
            for block in iter(lambda: resp.read(CHUNK), b""):
                digest.update(block)
                out.write(block)
        if digest.hexdigest() != jar.sha256:
            raise RuntimeError(
                f"checksum mismatch for {jar.url}: expected {jar.sha256}, got {digest.hexdigest()}; "
                "the download is discarded (check RECON_MAVEN_REPO or the pin in jars.lock)"
            )
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def ensure_jars(dest: Path) -> list[Path]:
    return [fetch(jar, dest) for jar in read_lock()]


UDF_SOURCES = Path(__file__).resolve().parents[1] / "jvm"
UDF_JAR_PREFIX = "psp-recon-udf-"


def udf_jar_name(sources: Path = UDF_SOURCES) -> str:
    digest = hashlib.sha256()
    for src in sorted(sources.rglob("*.java")):
        digest.update(src.relative_to(sources).as_posix().encode() + b"\0" + src.read_bytes())
    return f"{UDF_JAR_PREFIX}{digest.hexdigest()[:16]}.jar"


def build_udf_jar(dest: Path, sources: Path = UDF_SOURCES) -> Path:
    """Compile ``jobs/jvm`` (Java 8 bytecode: every EMR / Glue runtime runs it) into ``dest``."""
    target = dest / udf_jar_name(sources)
    if target.exists():
        return target
    javac, jar_tool = shutil.which("javac"), shutil.which("jar")
    if not javac or not jar_tool:
        raise RuntimeError("javac / jar not found: the project's JVM functions need a JDK (OpenJDK 17: apt install openjdk-17-jdk-headless)")
    import pyspark

    spark_jars = Path(pyspark.__file__).parent / "jars"
    classpath = os.pathsep.join(str(p) for p in sorted(spark_jars.glob("spark-sql-api_*.jar")))  # UDF1 & co.
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest, prefix=".udf-build-") as work:
        classes = Path(work) / "classes"
        classes.mkdir()
        files = [str(p) for p in sorted(sources.rglob("*.java"))]
        compiled = subprocess.run([javac, "--release", "8", "-nowarn", "-cp", classpath, "-d", str(classes), *files],
                                  capture_output=True, text=True)
        if compiled.returncode != 0:
            raise RuntimeError(f"javac failed on {sources}:\n{compiled.stderr.strip()}")
        built = Path(work) / target.name
        subprocess.run([jar_tool, "cf", str(built), "-C", str(classes), "."], check=True, capture_output=True, text=True)
        for old in dest.glob(f"{UDF_JAR_PREFIX}*.jar"):
            old.unlink()
        built.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_dest = Path(__file__).resolve().parents[2] / ".local" / "jars"
    parser.add_argument("--dest", type=Path, default=default_dest)
    args = parser.parse_args(argv)
    for path in [*ensure_jars(args.dest), build_udf_jar(args.dest)]:
        print(f"ok {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
