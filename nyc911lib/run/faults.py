"""Named points where the fault tests kill a run, to prove a crash loses nothing.

`NYC911_KILL_AT=<point>` stops the run when it reaches that point; `NYC911_KILL_AT=<point>+<seconds>`
lets it go on, so the kill lands in the middle of the work that follows (a MERGE, a gold write).
With `NYC911_FAULT_MARK=<file>` the point writes its name to that file (and, without a delay,
stops its process with SIGSTOP): the test then kills the run's whole process tree (CLI, kernel,
JVM) at once, as a power cut would. Without it the process kills itself (SIGKILL). Unset
(always, outside the tests) it does nothing. The points are listed in `POINTS`.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

POINTS = (
    "bronze.after_append",  # a publication's bronze rows committed, the ingest log not yet
    "silver.before_merge",  # superseded/quarantine/metrics committed, silver MERGE not yet
    "silver.after_merge",  # silver MERGE committed, the batch accounting not yet
    "gold.after_kpi_weekly",  # first gold table rewritten, the others not yet
    "gold.parallel_writes",  # the other gold tables are about to be written, four at a time
)


def fault_point(name: str) -> None:
    """Stop or kill this run here (or after a delay) when NYC911_KILL_AT names this point."""
    point, _, delay = os.environ.get("NYC911_KILL_AT", "").partition("+")
    if point != name:
        return
    mark = os.environ.get("NYC911_FAULT_MARK")
    if mark:
        Path(mark).write_text(name, encoding="utf-8")
        if not delay:
            os.kill(os.getpid(), signal.SIGSTOP)  # frozen until the test kills the process tree
        return
    if delay:
        timer = threading.Timer(float(delay), os.kill, (os.getpid(), signal.SIGKILL))
        timer.daemon = True
        timer.start()
    else:
        os.kill(os.getpid(), signal.SIGKILL)
