"""Where a benchmarked run spent its time, read from Spark's event log (what the Spark UI shows).

``python -m bench.eventlog EVENT_LOG [--marks ours.json]`` prints the profile as JSON; ``bench/run.py``
writes one event log per scale (``spark.eventLog.dir``) and adds the profile to the results.

Per pipeline stage (parse, match, ledger: the Spark jobs submitted between the stage's start and end
marks in ``ours.json``):

* ``jobs`` and ``job_s``: Spark jobs and the wall time covered by at least one running job;
* ``driver_s``: the stage's wall time with no Spark job running (planning, Delta log commits and
  snapshots, Python on the driver, PostgreSQL): the fixed cost a many-pass stage pays per pass;
* ``task_s``: executor run time summed over tasks (on 2 cores, at best twice ``job_s``);
* ``shuffle_write_gb``, ``spill_disk_gb``, ``input_gb``;
* ``top_jobs``: the longest jobs with their call site (the line of our code that triggered them);
* ``skewed``: stages whose longest task ran for more than four times the median and above 10 s.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

GB = 1e9


def read_events(path: Path):
    """The events of one Spark event log (JSON lines, uncompressed; an ``.inprogress`` log works too)."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.strip()
            if line:
                try:
                    yield json.loads(line)
                except ValueError:          # the last line of a log whose writer was killed
                    continue


def _covered(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of [start, end) intervals."""
    total, end_seen = 0.0, None
    for start, end in sorted(intervals):
        if end_seen is None or start > end_seen:
            total += end - start
            end_seen = end
        elif end > end_seen:
            total += end - end_seen
            end_seen = end
    return total


_GENERIC = ("NativeMethodAccessorImpl", "DeltaTableBuilder", "DatabricksLogging")


def _call_site(props: dict, executions: dict[str, str]) -> str:
    """The job's call site; for a job Spark started on its own (AQE, Delta) the SQL query's it serves."""
    site = props.get("callSite.short") or ""
    desc = props.get("spark.job.description") or ""
    if desc and desc != site:
        return desc + " @ " + site
    if not site or any(g in site for g in _GENERIC):
        for key in ("spark.sql.execution.root.id", "spark.sql.execution.id"):
            query = executions.get(str(props.get(key)))
            if query and (not site or not any(g in query for g in _GENERIC)):
                return query
    return site


def load(path: Path) -> dict:
    """Jobs (start, end, call site, stage ids) and stages (tasks: durations, metrics) of an event log."""
    jobs: dict[int, dict] = {}
    stage_job: dict[int, int] = {}
    stages: dict[int, dict] = defaultdict(lambda: {"durations": [], "run_ms": 0, "shuffle_write": 0, "spill_disk": 0,
                                                   "spill_memory": 0, "input": 0, "name": ""})
    executions: dict[str, str] = {}
    for ev in read_events(path):
        kind = ev.get("Event") or ""
        if kind.endswith("SparkListenerSQLExecutionStart"):
            executions[str(ev.get("executionId"))] = ev.get("description") or ""
        elif kind == "SparkListenerJobStart":
            props = ev.get("Properties") or {}
            jid = ev["Job ID"]
            jobs[jid] = {"start": ev["Submission Time"] / 1000, "end": None, "props": props}
            for sid in ev.get("Stage IDs", []):
                stage_job[sid] = jid
        elif kind == "SparkListenerJobEnd" and ev["Job ID"] in jobs:
            jobs[ev["Job ID"]]["end"] = ev["Completion Time"] / 1000
        elif kind == "SparkListenerStageCompleted":
            info = ev.get("Stage Info") or {}
            stages[info.get("Stage ID")]["name"] = info.get("Stage Name", "")
        elif kind == "SparkListenerTaskEnd":
            st = stages[ev["Stage ID"]]
            info, m = ev.get("Task Info") or {}, ev.get("Task Metrics") or {}
            if info.get("Finish Time") and info.get("Launch Time"):
                st["durations"].append((info["Finish Time"] - info["Launch Time"]) / 1000)
            st["run_ms"] += m.get("Executor Run Time", 0)
            st["shuffle_write"] += (m.get("Shuffle Write Metrics") or {}).get("Shuffle Bytes Written", 0)
            st["spill_disk"] += m.get("Disk Bytes Spilled", 0)
            st["spill_memory"] += m.get("Memory Bytes Spilled", 0)
            st["input"] += (m.get("Input Metrics") or {}).get("Bytes Read", 0)
    for jid, job in jobs.items():
        job["site"] = _call_site(job.pop("props"), executions)
        if job["end"] is None:                  # a job still running when the log ended
            job["end"] = job["start"]
    return {"jobs": jobs, "stages": dict(stages), "stage_job": stage_job}


def profile(log: dict, phases: list[tuple[str, float, float]], top: int = 5) -> dict:
    """Per phase (name, start, end as epoch seconds): jobs submitted in it and what they cost."""
    out = {}
    by_job: dict[int, list[dict]] = defaultdict(list)
    for sid, st in log["stages"].items():
        jid = log["stage_job"].get(sid)
        if jid is not None:
            by_job[jid].append({"stage_id": sid, **st})
    for name, start, end in phases:
        ids = [j for j, job in log["jobs"].items() if start <= job["start"] < end]
        intervals = [(log["jobs"][j]["start"], min(log["jobs"][j]["end"], end)) for j in ids]
        job_s = _covered(intervals)
        sts = [s for j in ids for s in by_job.get(j, [])]
        skewed = []
        for s in sts:
            d = s["durations"]
            if len(d) >= 4 and max(d) > 10 and max(d) > 4 * statistics.median(d):
                skewed.append({"stage_id": s["stage_id"], "name": s["name"], "tasks": len(d),
                               "max_task_s": round(max(d), 1), "median_task_s": round(statistics.median(d), 2)})
        longest = sorted(ids, key=lambda j: log["jobs"][j]["start"] - log["jobs"][j]["end"])[:top]
        out[name] = {
            "wall_s": round(end - start, 1), "jobs": len(ids), "job_s": round(job_s, 1),
            "driver_s": round(max(0.0, (end - start) - job_s), 1),
            "task_s": round(sum(s["run_ms"] for s in sts) / 1000, 1),
            "tasks": sum(len(s["durations"]) for s in sts),
            "shuffle_write_gb": round(sum(s["shuffle_write"] for s in sts) / GB, 2),
            "spill_disk_gb": round(sum(s["spill_disk"] for s in sts) / GB, 2),
            "input_gb": round(sum(s["input"] for s in sts) / GB, 2),
            "top_jobs": [{"job": j, "s": round(log["jobs"][j]["end"] - log["jobs"][j]["start"], 1),
                          "site": log["jobs"][j]["site"]} for j in longest],
            "skewed": sorted(skewed, key=lambda s: -s["max_task_s"])[:top],
        }
    return out


def phases_from_marks(ours: dict, names: tuple[str, ...] = ("parse", "match", "ledger")) -> list[tuple[str, float, float]]:
    """(name, start, end) of the named stages from ``bench/ours.py``'s JSON (stage durations in order from
    ``started_at``)."""
    at, out = ours["started_at"], []
    for name, seconds in ours.get("stages", {}).items():
        if name in names:
            out.append((name, at, at + seconds))
        at += seconds
    return out


def find_log(folder: Path) -> Path | None:
    """The (single) event log Spark wrote into ``folder``."""
    logs = sorted((p for p in folder.glob("*") if p.is_file()), key=lambda p: p.stat().st_mtime)
    return logs[-1] if logs else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("event_log", type=Path, help="the event log file, or the folder holding it")
    ap.add_argument("--marks", type=Path, help="bench/ours.py's JSON (stage boundaries); default: the whole log")
    ap.add_argument("--top", type=int, default=8)
    args = ap.parse_args(argv)
    path = find_log(args.event_log) if args.event_log.is_dir() else args.event_log
    if path is None:
        print(f"no event log in {args.event_log}", file=sys.stderr)
        return 2
    log = load(path)
    if args.marks:
        phases = phases_from_marks(json.loads(args.marks.read_text()))
    else:
        starts = [j["start"] for j in log["jobs"].values()] or [0.0]
        ends = [j["end"] for j in log["jobs"].values()] or [0.0]
        phases = [("all", min(starts), max(ends))]
    print(json.dumps(profile(log, phases, args.top), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
