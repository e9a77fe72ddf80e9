"""Job logs from CloudWatch Logs: followed live while a job runs, and read back whole to find
the metrics a job printed.

Training hosts write to the log group /aws/sagemaker/TrainingJobs, one stream per host named
`<job>/algo-<n>-<epoch>`; transform instances to /aws/sagemaker/TransformJobs. `LogFollower`
tails every stream of one job with DescribeLogStreams + GetLogEvents (forward tokens), as the
sagemaker SDK's `logs_for_job` does; `job_events` reads them all with FilterLogEvents.
"""
from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from hearth.exceptions import ResourceNotFound

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
TRANSFORM_LOG_GROUP = "/aws/sagemaker/TransformJobs"

Sink = Callable[[str], None]


def _print(line: str) -> None:
    print(line, file=sys.stdout, flush=True)


def sinks(logs: Any) -> Tuple[Optional[Sink], Sink]:
    """(where log lines go, where progress lines go) for a `logs` argument: True (or a string
    other than "None", as the sagemaker SDK accepts) prints both; False prints progress only;
    a callable receives both."""
    if callable(logs):
        return logs, logs
    if isinstance(logs, str):
        logs = logs != "None"
    return (_print if logs else None), _print


class LogFollower:
    """Tails every log stream of one job, in arrival order per stream.

    `call` runs a logs client operation with errors translated (Session.call's shape)."""

    def __init__(self, call: Callable[..., dict], group: str, job_name: str):
        self._call = call
        self._group = group
        self._prefix = job_name + "/"
        self._tokens: Dict[str, Optional[str]] = {}

    def _streams(self) -> List[str]:
        names, token = [], None
        while True:
            args = {"logGroupName": self._group, "logStreamNamePrefix": self._prefix}
            if token:
                args["nextToken"] = token
            try:
                page = self._call("logs", "describe_log_streams", **args)
            except ResourceNotFound:  # the group appears with the first job's first line
                return names
            names += [s["logStreamName"] for s in page.get("logStreams", [])]
            token = page.get("nextToken")
            if not token:
                return sorted(names)

    def poll(self) -> List[Tuple[int, str]]:
        """(timestamp in ms, line) of every event that arrived since the last poll. With
        several streams (hosts) each line starts with its host's name."""
        for name in self._streams():
            self._tokens.setdefault(name, None)
        several = len(self._tokens) > 1
        lines: List[Tuple[int, str]] = []
        for name, token in self._tokens.items():
            host = name[len(self._prefix):]
            head, _, tail = host.rpartition("-")
            if head and tail.isdigit() and len(tail) >= 9:  # algo-1-<epoch> -> algo-1
                host = head
            while True:
                args = {"logGroupName": self._group, "logStreamName": name, "startFromHead": True}
                if token:
                    args["nextToken"] = token
                page = self._call("logs", "get_log_events", **args)
                for event in page.get("events", []):
                    message = event["message"].rstrip("\n")
                    lines.append((event.get("timestamp", 0),
                                  f"[{host}] {message}" if several else message))
                next_token = page.get("nextForwardToken")
                if not page.get("events") or next_token == token:
                    token = next_token or token
                    break
                token = next_token
            self._tokens[name] = token
        return lines


class Backoff:
    """Poll intervals that start short (Hearth answers in milliseconds) and grow to `cap`
    seconds; reset() after progress."""

    def __init__(self, cap: float, start: float = 0.05):
        self.cap = max(cap, start)
        self.start = start
        self.current = start

    def reset(self) -> None:
        self.current = self.start

    def sleep(self) -> None:
        time.sleep(self.current)
        self.current = min(self.current * 1.5, self.cap)


def job_events(call: Callable[..., dict], group: str, job_name: str) -> List[dict]:
    """Every log event of a job's streams (FilterLogEvents), oldest first."""
    events, token = [], None
    while True:
        args = {"logGroupName": group, "logStreamNamePrefix": job_name + "/"}
        if token:
            args["nextToken"] = token
        try:
            page = call("logs", "filter_log_events", **args)
        except ResourceNotFound:
            return events
        events += page.get("events", [])
        token = page.get("nextToken")
        if not token:
            events.sort(key=lambda e: (e.get("timestamp", 0), int(e.get("eventId", 0) or 0)))
            return events


@dataclass
class MetricPoint:
    """One value of a metric found in a log line. `step` counts the metric's reports from 0
    (for the built-ins, the epoch or boosting round); `timestamp` is in seconds since the
    epoch."""
    step: int
    timestamp: float
    value: float


def parse_metrics(events: Iterable[dict],
                  definitions: Iterable[dict]) -> Dict[str, List[MetricPoint]]:
    """The metric series in `events` (log events), by MetricDefinitions ({"Name", "Regex"}:
    the first group of the regex's first match on a line is the value)."""
    compiled = []
    for d in definitions:
        try:
            compiled.append((d["Name"], re.compile(d["Regex"])))
        except re.error:
            continue  # a regex Python cannot read: that metric just has no series here
    series: Dict[str, List[MetricPoint]] = {}
    for event in events:
        message = event.get("message", "")
        for name, regex in compiled:
            match = regex.search(message)
            if not match or not match.groups():
                continue
            try:
                value = float(match.group(1))
            except (TypeError, ValueError):
                continue
            points = series.setdefault(name, [])
            points.append(MetricPoint(len(points), event.get("timestamp", 0) / 1000.0, value))
    return series
