"""A process that has imported `newsletter` once and forks a child for each command.

Most of a `newsletter` process's start-up is importing (~0.7 s); the suite starts a few hundred
of them. Forked from this one, each is still a real process of its own (its own pid, killed by a
real SIGKILL, its exit status reaped by this one), with its own environment and output files,
but starts in milliseconds. This process stays single-threaded and never opens a database or a
socket, so what a child inherits is only imported code.

Protocol, one JSON object per line on stdin, one answer per line on stdout:
``{"op": "run", "args": […], "env": {…}, "out": path, "err": path}`` → ``{"pid": n}``;
``{"op": "wait", "pid": n}`` → ``{"code": exit status, or -signal}``;
``{"op": "poll", "pid": n}`` → ``{"code": … or null while it runs}``.
"""

from __future__ import annotations

import json
import os
import random
import sys
import traceback
from typing import Any, NoReturn


def preload() -> None:
    """What every command imports anyway, and the providers the suite uses."""
    import tests.reliability.child  # noqa: F401


def child(command: dict[str, Any]) -> NoReturn:
    """In the forked child: become the command. Its SystemExit ends this process the way any
    `newsletter` process ends (exit handlers run: connections closed, SQLite checkpointed)."""
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for fd, path in ((1, command["out"]), (2, command["err"])):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
    os.environ.clear()
    os.environ.update(command["env"])
    random.seed()  # not the parent's sequence: retry jitter differs between children
    sys.argv = ["newsletter", *command["args"]]
    from tests.reliability.child import main

    try:
        main()
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        raise SystemExit(1) from None
    raise SystemExit(0)


def serve() -> None:
    preload()
    answer(ready=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "run":
            pid = os.fork()
            if pid == 0:
                child(command)
            answer(pid=pid)
        elif command["op"] == "wait":
            _, status = os.waitpid(command["pid"], 0)
            answer(code=os.waitstatus_to_exitcode(status))
        elif command["op"] == "poll":
            pid, status = os.waitpid(command["pid"], os.WNOHANG)
            answer(code=os.waitstatus_to_exitcode(status) if pid else None)


def answer(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    serve()
