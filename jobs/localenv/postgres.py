"""A throwaway PostgreSQL server for laptops and CI, used when no database URL is configured.

``python3 -m jobs.localenv.postgres start`` installs the server from Debian's packages when the machine
has none, creates a cluster under ``.local/pg`` (git-ignored), starts it on 127.0.0.1 on a free port and
writes two URLs: ``.local/pg/url``, the application's login ``recon_app`` (no superuser, no BYPASSRLS:
row-level security applies to it), and ``.local/pg/admin_url``, the cluster's superuser ``recon``, which
creates databases and runs the migrations. ``jobs.settings`` reads them when ``RECON_DATABASE_URL`` /
``RECON_DATABASE_ADMIN_URL`` are not set. Running ``start`` again reuses the cluster; ``stop`` stops it;
``url`` prints the application's URL.

As root, PostgreSQL refuses to run, so the cluster is owned by and run as the ``postgres`` OS user
(created by the Debian package).
"""
from __future__ import annotations

import argparse
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

DB_NAME = "recon"
DB_USER = "recon"
APP_ROLE = "recon_app"           # the role of sql/migrations/V006__row_level_security.sql, here with a login
RUN_AS = "postgres"
DEFAULT_DIR = Path(__file__).resolve().parents[2] / ".local" / "pg"


class PostgresSetupError(RuntimeError):
    pass


def _version_key(path: Path) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in path.parent.name.split("."))
    except ValueError:
        return (0,)


def find_bindir() -> Path | None:
    """The newest PostgreSQL server binaries on this machine (Debian layout first, then PATH)."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: _version_key(p.parent))
    if candidates:
        return candidates[-1].parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if out and (Path(out) / "postgres").exists() and (Path(out) / "initdb").exists():
            return Path(out)
    return None


def install_server() -> Path:
    """Install Debian's PostgreSQL server (needs root and apt). Returns the bin directory."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise PostgresSetupError(
            "no PostgreSQL server binaries found and cannot install them (needs root and apt-get). "
            "Install PostgreSQL, or set RECON_DATABASE_URL to an existing server."
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql"], check=True, env=env)
    bindir = find_bindir()
    if bindir is None:
        raise PostgresSetupError("apt-get installed postgresql but no server binaries were found")
    return bindir


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class LocalPostgres:
    base: Path = DEFAULT_DIR

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base / "run"

    @property
    def state_file(self) -> Path:
        return self.base / "state.json"

    @property
    def url_file(self) -> Path:
        return self.base / "url"

    @property
    def admin_url_file(self) -> Path:
        return self.base / "admin_url"

    @property
    def log_file(self) -> Path:
        return self.base / "postgres.log"

    # -- running commands as the unprivileged cluster owner -------------------------------------
    def _as_owner(self, argv: list[str], **kw) -> subprocess.CompletedProcess:
        if os.geteuid() == 0:
            argv = ["runuser", "-u", RUN_AS, "--", *argv]
        return subprocess.run(argv, capture_output=True, text=True, **kw)

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            owner = pwd.getpwnam(RUN_AS)
            for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
                os.chown(p, owner.pw_uid, owner.pw_gid)

    def _state(self) -> dict:
        return json.loads(self.state_file.read_text()) if self.state_file.exists() else {}

    def _write_state(self, state: dict) -> None:
        self.state_file.write_text(json.dumps(state, indent=2))
        self.state_file.chmod(0o600)
        self.url_file.write_text(self.app_url(state) + "\n")
        self.url_file.chmod(0o600)
        self.admin_url_file.write_text(self.url(state) + "\n")
        self.admin_url_file.chmod(0o600)

    @staticmethod
    def url(state: dict) -> str:
        """The superuser's URL: databases, migrations."""
        return f"postgresql://{DB_USER}:{state['password']}@127.0.0.1:{state['port']}/{DB_NAME}"

    @staticmethod
    def app_url(state: dict) -> str:
        """The application's URL (``recon_app``)."""
        return f"postgresql://{APP_ROLE}:{state['app_password']}@127.0.0.1:{state['port']}/{DB_NAME}"

    # -- lifecycle -------------------------------------------------------------------------------
    def is_running(self) -> bool:
        state = self._state()
        if not state or not self.data_dir.exists():
            return False
        res = self._as_owner([str(Path(state["bindir"]) / "pg_ctl"), "status", "-D", str(self.data_dir)], check=False)
        return res.returncode == 0

    def init(self, bindir: Path) -> dict:
        self.base.mkdir(parents=True, exist_ok=True)
        state = {"bindir": str(bindir), "password": secrets.token_urlsafe(18), "port": free_port(),
                 "app_password": secrets.token_urlsafe(18)}
        pwfile = self.base / "pwfile"
        pwfile.write_text(state["password"] + "\n")
        self.socket_dir.mkdir(exist_ok=True)
        self._chown(self.base)
        res = self._as_owner(
            [str(bindir / "initdb"), "-D", str(self.data_dir), "-U", DB_USER, f"--pwfile={pwfile}",
             "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"],
            check=False,
        )
        pwfile.unlink()
        if res.returncode != 0:
            raise PostgresSetupError(f"initdb failed:\n{res.stdout}\n{res.stderr}")
        self._write_state(state)
        return state

    def start(self) -> str:
        """Start (initialising and installing first where needed) and return the database URL."""
        state = self._state()
        if state and self.data_dir.exists() and self.is_running() and state.get("app_password"):
            return self.url(state)
        if not state or not self.data_dir.exists():
            shutil.rmtree(self.base, ignore_errors=True)
            state = self.init(find_bindir() or install_server())
        state.setdefault("app_password", secrets.token_urlsafe(18))
        if self.is_running():
            self._write_state(state)
            self._ensure_database(Path(state["bindir"]), state)
            return self.url(state)
        if not port_is_free(state["port"]):
            state["port"] = free_port()
        self._write_state(state)
        bindir = Path(state["bindir"])
        options = (f"-p {state['port']} -k {self.socket_dir} -c listen_addresses=127.0.0.1 "
                   "-c max_connections=100 -c shared_buffers=256MB")
        self.log_file.touch()
        self._chown(self.log_file)
        res = self._as_owner(
            [str(bindir / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(self.data_dir), "-l", str(self.log_file), "-o", options],
            check=False,
        )
        if res.returncode != 0:
            tail = self.log_file.read_text()[-2000:] if self.log_file.exists() else ""
            raise PostgresSetupError(f"PostgreSQL did not start (pg_ctl exit {res.returncode}):\n{res.stderr}\n{tail}")
        self._ensure_database(bindir, state)
        return self.url(state)

    def _ensure_database(self, bindir: Path, state: dict) -> None:
        env = dict(os.environ, PGPASSWORD=state["password"])
        psql = [str(bindir / "psql"), "-h", "127.0.0.1", "-p", str(state["port"]), "-U", DB_USER, "-d", "postgres", "-tA"]
        exists = subprocess.run([*psql, "-c", f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'"],
                                capture_output=True, text=True, env=env, check=True).stdout.strip()
        if exists != "1":
            subprocess.run([*psql, "-c", f'CREATE DATABASE "{DB_NAME}"'], capture_output=True, text=True, env=env, check=True)
        # the application's login: no superuser, no BYPASSRLS (the migration grants it its rights)
        subprocess.run([*psql, "-c", (
            f"DO $$ BEGIN CREATE ROLE {APP_ROLE} NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE; "
            "EXCEPTION WHEN duplicate_object THEN NULL; END $$; "
            f"ALTER ROLE {APP_ROLE} LOGIN PASSWORD '{state['app_password']}'")],
            capture_output=True, text=True, env=env, check=True)

    def stop(self) -> None:
        state = self._state()
        if state and self.data_dir.exists():
            self._as_owner([str(Path(state["bindir"]) / "pg_ctl"), "stop", "-m", "fast", "-D", str(self.data_dir)], check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Project-local throwaway PostgreSQL server")
    parser.add_argument("command", choices=["start", "stop", "status", "url"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args(argv)
    pg = LocalPostgres(args.dir)
    try:
        if args.command == "start":
            print(pg.start())
        elif args.command == "stop":
            pg.stop()
        elif args.command == "status":
            running = pg.is_running()
            print("running" if running else "stopped")
            return 0 if running else 3
        else:
            if not pg.url_file.exists():
                print("no local server has been started (python3 -m jobs.localenv.postgres start)", file=sys.stderr)
                return 3
            print(pg.url_file.read_text().strip())
    except PostgresSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
