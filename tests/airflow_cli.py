"""Airflow's command line for tests: an Airflow home's environment (``airflow_env``: this repository's DAGs and
plugins; the ``airflow_home`` fixture of conftest migrates one per module) and one CLI process that runs the commands it is given in turn
(``AirflowCli``), each with its own extra environment variables."""
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).parents[1]


def airflow_env(home: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.update({"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                **extra})
    return env


# Airflow's own command-line entry point, called once per line of JSON read from stdin ({"argv": [...], "env": {...}}):
# commands of one process share what the first one started (the e2e test's rerun finds the Spark session its first
# run started; a second cold process cost about a minute of JVM start and JIT warm-up).
CLI_LOOP = r"""
import json, os, sys, traceback
from airflow.__main__ import main
for line in sys.stdin:
    command = json.loads(line)
    os.environ.update(command["env"])
    sys.argv = ["airflow", *command["argv"]]
    status = 0
    try:
        main()
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        status = 1
    print(f"\n{MARK} {status}", flush=True)
"""
MARK = "@@ airflow command exited with"


class AirflowCli:
    """One Airflow CLI process (``airflow.__main__.main``) that runs the commands it is given in turn."""

    def __init__(self, env: dict):
        self.proc = subprocess.Popen([sys.executable, "-c", f"MARK = {MARK!r}\n" + CLI_LOOP], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        """Every output line into the queue (read by a thread, so that the pipe never fills), then None."""
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def run(self, *args: str, timeout: float = 1200, env: dict | None = None) -> tuple[int, str]:
        """(exit status, output) of ``airflow <args>``, with ``env`` added to the process's environment first."""
        self.proc.stdin.write(json.dumps({"argv": list(args), "env": env or {}}) + "\n")
        self.proc.stdin.flush()
        out, deadline = [], time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(1.0, deadline - time.monotonic()))
            except queue.Empty:
                self.proc.kill()
                raise AssertionError(f"airflow {' '.join(args[:3])} still running after {timeout:.0f} s: "
                                     + "".join(out)[-4000:]) from None
            if line is None:
                raise AssertionError("the Airflow CLI process ended: " + "".join(out)[-4000:])
            if line.startswith(MARK):
                return int(line[len(MARK):]), "".join(out)
            out.append(line)

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
