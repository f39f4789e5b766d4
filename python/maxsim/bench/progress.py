"""Progress of ``maxsim bench``: its workers report, the parent shows it.

Each suite and thread count runs in a worker process (``maxsim _worker``).
The suites announce their workloads through :func:`maxsim.bench._common.plan`
and :func:`~maxsim.bench._common.step`; in a worker those calls print one
event line each on stdout (:func:`emit`), prefixed so that nothing else a
peer might print is taken for one. The parent reads the lines as they come
(:func:`read_worker_output`) and feeds them to :class:`SuiteProgress`, which
draws one tqdm bar per suite on stderr, advancing per workload and naming the
one in progress. Where stderr is not a terminal (a log, a pipe), or tqdm is
not installed, there is no bar: one plain line per suite and thread count.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import IO, Any, Iterable, Optional

#: Marks an event line in a worker's stdout.
EVENT_PREFIX = "maxsim-progress "


def emit(event: dict[str, Any]) -> None:
    """Prints ``event`` for the parent (a worker's ``_common.progress_hook``)."""
    print(EVENT_PREFIX + json.dumps(event), flush=True)


def read_worker_output(lines: Iterable[str], progress: SuiteProgress) -> Optional[dict]:
    """Passes the event lines of a worker's stdout to ``progress`` as they
    arrive; returns the worker's result (its last JSON line holding
    ``"rows"``), or None when there is none."""
    result = None
    for line in lines:
        if line.startswith(EVENT_PREFIX):
            progress.event(json.loads(line[len(EVENT_PREFIX) :]))
        elif line.startswith("{"):
            try:
                parsed = json.loads(line)
            except ValueError:
                continue
            if isinstance(parsed, dict) and "rows" in parsed:
                result = parsed
    return result


def format_duration(seconds: float) -> str:
    """``"12 min 05 s"``, or ``"41.2 s"`` under a minute."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs:02d} s"


def _is_sized_terminal(stream: IO[str]) -> bool:
    """Whether ``stream`` is a terminal with a known size. tqdm draws nothing on
    a terminal of 0 rows (a pseudo-terminal nobody sized), so that gets the
    plain lines."""
    try:
        return stream.isatty() and os.get_terminal_size(stream.fileno()).lines > 0
    except (AttributeError, OSError, ValueError):  # no fileno (StringIO), closed
        return False


class SuiteProgress:
    """The progress of one suite, over its ``runs`` workers (one per thread
    count), on ``stream``.

    ``bar``: draw a tqdm bar (default: when ``stream`` is a terminal and tqdm
    is installed); otherwise plain lines, one per :meth:`start` and one per
    workload, so that a log shows what runs. Until every
    worker has announced its workloads, the bar's total assumes that the
    workers to come have as many as the last one announced.
    """

    def __init__(
        self, suite: str, runs: int, stream: IO[str] = sys.stderr, bar: Optional[bool] = None
    ):
        self.suite = suite
        self.runs = runs
        self.stream = stream
        self.threads = 0
        self._planned: list[int] = []  # workloads announced by each worker so far
        self.started = time.perf_counter()
        self._bar: Any = None
        self._in_workload = False  # the current worker has a workload under way
        self._steps = 0  # workloads the current worker has started
        if bar is None:
            bar = _is_sized_terminal(stream)
        if bar:
            try:
                from tqdm import tqdm
            except ImportError:
                bar = False
            else:
                self._bar = tqdm(
                    total=0,
                    desc=suite,
                    unit="workload",
                    file=stream,
                    leave=False,
                    mininterval=0,  # a redraw per workload: rare, and never stale
                    bar_format="{desc}: {n_fmt}/{total_fmt} workloads done [{elapsed}]{postfix}",
                )

    def start(self, threads: int) -> None:
        """A worker for ``threads`` threads starts."""
        self.threads = threads
        self._steps = 0
        if self._bar is None:
            print(f"[maxsim bench] {self.suite}, {threads} thread(s)...", file=self.stream)
            self.stream.flush()
        else:
            self._bar.set_postfix_str(f"starting {threads} thread(s)")

    def event(self, event: dict[str, Any]) -> None:
        """An event from the worker: ``{"plan": n}`` or ``{"step": label}``."""
        if "plan" in event:
            self._planned.append(int(event["plan"]))
            if self._bar is not None:
                to_come = max(0, self.runs - len(self._planned))
                self._bar.total = sum(self._planned) + to_come * self._planned[-1]
                self._bar.refresh()
        elif "step" in event:
            self._steps += 1
            if self._bar is None:
                of = f"/{self._planned[-1]}" if self._planned else ""
                print(f"[maxsim bench]   {event['step']} ({self._steps}{of})", file=self.stream)
                self.stream.flush()
                return
            if self._in_workload:
                self._bar.update(1)  # a step ends the worker's previous workload
            self._in_workload = True
            self._bar.set_postfix_str(f"now: {event['step']}, {self.threads} thread(s)")

    def finish_run(self) -> None:
        """The current worker ended: its last workload is done."""
        if self._bar is not None and self._in_workload:
            self._bar.update(1)
        self._in_workload = False

    def close(self) -> float:
        """Removes the bar; returns the seconds since the suite started."""
        if self._bar is not None:
            self._bar.close()
        return time.perf_counter() - self.started
