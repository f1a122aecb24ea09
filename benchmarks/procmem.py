"""Run a command as a measured subprocess: wall time and peak RSS of its whole process tree.

A thread samples every ~50 ms the VmRSS of the child and of all its descendants (the Spark
driver JVM, papermill kernels, ...), found through the parent ids in /proc/*/stat (re-read every
~0.5 s), and keeps the largest sum. Linux only; no psutil. Pages shared between processes count
once per process, so the figure is an upper bound of the tree's real footprint.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

SAMPLE_INTERVAL_S = 0.05


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process visible in /proc."""
    out: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # the command name (field 2) may hold spaces and parentheses: split after its last ')'
        out[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    return out


PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
TREE_REFRESH_SAMPLES = 10  # re-read the process tree every 10th sample (~0.5 s): a /proc scan costs ~10 ms


def _rss_bytes(pid: int) -> int:
    """VmRSS of one process (the second field of /proc/<pid>/statm, in pages); 0 once it is gone."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_BYTES
    except (OSError, IndexError, ValueError):
        return 0


def descendants(root: int) -> list[int]:
    """`root` and every process below it."""
    children: dict[int, list[int]] = {}
    for pid, ppid in _parents().items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def tree_rss_bytes(root: int) -> int:
    """The summed VmRSS of `root` and every descendant, in bytes."""
    return sum(_rss_bytes(pid) for pid in descendants(root))


def folder_bytes(folders: Sequence[Path]) -> int:
    """The summed size of the files under `folders` (a missing one counts 0; files vanishing
    while they are listed are skipped)."""
    total = 0
    for folder in folders:
        for root, _, files in os.walk(folder):
            for name in files:
                with contextlib.suppress(OSError):
                    total += os.stat(os.path.join(root, name)).st_size
    return total


class PeakSampler(threading.Thread):
    """Samples the process tree of `pid` until `stop()`; `peak` is the largest sum seen, and
    `peak_temp` the largest size of the `temp` folders (an engine's spill), read every ~0.5 s."""

    def __init__(self, pid: int, interval_s: float = SAMPLE_INTERVAL_S, temp: Sequence[Path] = ()) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval_s, self.peak, self.temp, self.peak_temp = pid, interval_s, 0, temp, 0
        self._done = threading.Event()

    def run(self) -> None:
        members: list[int] = []
        sample = 0
        while not self._done.is_set():
            if sample % TREE_REFRESH_SAMPLES == 0:
                members = descendants(self.pid)
                if self.temp:
                    self.peak_temp = max(self.peak_temp, folder_bytes(self.temp))
            self.peak = max(self.peak, sum(_rss_bytes(pid) for pid in members))
            sample += 1
            self._done.wait(self.interval_s)

    def stop(self) -> int:
        self._done.set()
        self.join()
        return self.peak


def kill_tree(root: int) -> None:
    """SIGKILL `root` and its descendants (processes this harness started), leaves first."""
    for pid in reversed(descendants(root)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@dataclass(frozen=True)
class Measurement:
    """One measured run: wall time, peak tree RSS, exit status and the tail of its output."""

    wall_s: float
    peak_rss_bytes: int
    returncode: int
    timed_out: bool
    output_tail: str
    peak_temp_bytes: int = 0  # the largest size of the watched temporary folders (spill to disk)

    @property
    def ok(self) -> bool:
        """Whether the command finished in time with exit status 0."""
        return self.returncode == 0 and not self.timed_out


def measure(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str],
    log: Path,
    timeout_s: float | None = None,
    cwd: Path | None = None,
    temp: Sequence[Path] = (),
) -> Measurement:
    """Run `cmd` (stdout and stderr to `log`) and measure it, and the peak size of the `temp`
    folders. On timeout the child and every process below it are killed."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd, env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        sampler = PeakSampler(proc.pid, temp=temp)
        sampler.start()
        timed_out = False
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            kill_tree(proc.pid)
            proc.wait()
        except BaseException:  # Ctrl-C or SIGTERM of the harness: leave no run behind
            kill_tree(proc.pid)
            proc.wait()
            sampler.stop()
            raise
        wall = time.perf_counter() - started
        peak = sampler.stop()
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
    return Measurement(wall, peak, proc.returncode, timed_out, tail, sampler.peak_temp)
