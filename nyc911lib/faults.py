"""Named points where the fault tests kill the process (SIGKILL), to prove a crash loses nothing.

`NYC911_KILL_AT=<point>` kills the process when the run reaches that point;
`NYC911_KILL_AT=<point>+<seconds>` starts a timer there instead, so the kill lands in the middle of
the Spark work that follows (a MERGE, a gold write). Unset (always, outside the tests) it does
nothing. The points are listed in `POINTS`.
"""

from __future__ import annotations

import os
import signal
import threading

POINTS = (
    "bronze.after_append",  # bronze rows committed, ingest log and checkpoint not yet
    "silver.before_merge",  # superseded/quarantine/metrics committed, silver MERGE not yet
    "gold.after_kpi_weekly",  # first gold table rewritten, the others not yet
)


def fault_point(name: str) -> None:
    """Kill this process here (or after a delay) when NYC911_KILL_AT names this point."""
    wanted = os.environ.get("NYC911_KILL_AT", "")
    point, _, delay = wanted.partition("+")
    if point != name:
        return
    if delay:
        timer = threading.Timer(float(delay), os.kill, (os.getpid(), signal.SIGKILL))
        timer.daemon = True
        timer.start()
    else:
        os.kill(os.getpid(), signal.SIGKILL)
