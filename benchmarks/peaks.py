"""Peak memory of every process in a measured command's tree (issue 16, item 7).

``ru_maxrss`` from ``wait4`` is exact, but only for the process the suite starts: the sender
processes of `send --workers N` are its children, which the suite cannot wait for, and the
kernel gives a parent only the *largest* peak of its reaped children, never their sum. So while
a command runs, a thread walks its process tree (``/proc/<pid>/task/<tid>/children``) every
``INTERVAL`` seconds and reads each process's ``VmHWM`` (its own peak resident set so far, kept
by the kernel: a sample misses no earlier peak, only growth in the last interval before the
process exits) and ``VmRSS`` (for the largest total the tree held at one moment). The product
has no hook for this: it is measured from outside, as any process would be.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

INTERVAL = 0.02  # seconds between samples


@dataclass
class TreePeaks:
    """Per process: the largest VmHWM seen (MB); and the largest sum of VmRSS at one sample."""

    peaks: dict[int, float] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    together_mb: float = 0.0

    def total_mb(self) -> float:
        """The sum of every process's own peak: what the tree needs if the peaks coincide."""
        return sum(self.peaks.values())


class TreeSampler(threading.Thread):
    """Samples the trees under ``roots`` until ``stop()``; then ``result`` holds the peaks."""

    def __init__(self, roots: list[int]):
        super().__init__(daemon=True)
        self.roots = roots
        self.result = TreePeaks()
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.sample()
            # A relative sleep, not a timed wait on the event: that one waits until a moment
            # of the clock, and a shifted clock (faketime in the tests) makes it wait for ever.
            time.sleep(INTERVAL)

    def stop(self) -> TreePeaks:
        self._done.set()
        self.join()
        return self.result

    def sample(self) -> None:
        together = 0.0
        for pid in self._tree():
            status = _status(pid)
            if "VmHWM" not in status:  # gone, or a zombie without memory
                continue
            peak = _mb(status["VmHWM"])
            self.result.peaks[pid] = max(self.result.peaks.get(pid, 0.0), peak)
            self.result.names.setdefault(pid, status.get("Name", "?"))
            together += _mb(status.get("VmRSS", "0 kB"))
        self.result.together_mb = max(self.result.together_mb, together)

    def _tree(self) -> list[int]:
        found, todo = [], list(self.roots)
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo += _children(pid)
        return found


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            out += [int(c) for c in (task / "children").read_text().split()]
    except OSError:  # the process is gone
        pass
    return out


def _status(pid: int) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def _mb(value: str) -> float:
    return int(value.split()[0]) / 1024  # "123456 kB"
