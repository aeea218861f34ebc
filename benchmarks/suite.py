"""`make bench`: every performance target of the issues, measured in one run, written to
docs/benchmarks.md.

    .venv/bin/python benchmarks/suite.py            # the full run (takes a while)
    .venv/bin/python benchmarks/suite.py --quick    # small sizes, to check the scripts work

On SQLite and, when it is reachable (NEWSLETTER_BENCH_POSTGRES_URL, else
NEWSLETTER_TEST_POSTGRES_URL), PostgreSQL: synthetic databases of 100,000 and 1,000,000
subscribers with 100,000 lessons due (synthetic.py); the import, the `due` query with nothing
due, `send --dry-run`, and `send` end to end to the file provider, to a local fake SES
(fake_ses.py, one worker), to a local fake SendGrid and Mailgun (fake_merge.py, one worker:
the providers that merge each recipient in themselves) and to a local fake Postmark
(fake_postmark.py) with 1 and 4 workers (`send --workers N`), plus the fake answering after
50 ms (best of three runs each: the speed-up is a ratio of two runs on shared cores);
`send --dry-run` and `send` with no transport again, both timed in-process the same way
(workloads.py), for the ledger's cost; each send path once under pyinstrument (profiles.py).
Every measured command runs in a child process; the peak memory of each process of its tree
is recorded (peaks.py). The references (references.py: the honest bare client, the network
ceiling, the naive pipeline) are measured in the same run, as are the existing render and
import benchmarks, MIME per email (mime.py: the file provider, and SES against fake_ses.py),
the JSON encoders of request bodies (json_encoders.py), requests in flight (concurrency.py:
`send --concurrency 1` and 16 to fake_ses.py answering after 100 ms) and the start-up of
`newsletter --help` (startup.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from peaks import TreeSampler
from report import machine, write_report
from synthetic import NOW, populate, postgres_schema, reset, sqlite_database

from newsletter.config import load_settings
from newsletter.project import Project
from newsletter.store import Store
from newsletter.store.engine import normalise_url

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "benchmarks"
SECRET = "benchmark-secret-key-0123456789abcdef"
LATENCY = 0.05  # seconds the slow fake waits before each answer (issue 6)
# The file provider writes one .eml (~45 KB) per email (a file each: the disk, not the MIME,
# is its cost now): it sends at most this many of the due emails (`send --limit`).
FILES = 20_000
# SES takes one signed request per email: its `send` sends at most this many (`--limit`).
SES_EMAILS = 5_000
# Emails each send path sends under the profiler (benchmarks/profiles.py), on SQLite; SES fewer.
PROFILED = 20_000
PROFILED_SES = 2_000


@dataclass
class Sizes:
    lists: tuple[int, ...]  # subscribers in the synthetic databases
    due: int  # lessons due in each
    imported: int  # CSV rows imported
    naive_sample: int

    @classmethod
    def of(cls, quick: bool) -> Sizes:
        if quick:
            return cls((2_000, 20_000), 2_000, 5_000, 30)
        return cls((100_000, 1_000_000), 100_000, 100_000, 300)


@dataclass
class Measured:
    """What one or more child processes took, together."""

    seconds: float
    cpu_seconds: float
    peak_mb: float  # the largest peak of any one process (ru_maxrss, or VmHWM for grandchildren)
    outputs: list[str]
    total_mb: float = 0.0  # the sum of every process's own peak (peaks.py)
    together_mb: float = 0.0  # the most resident memory the processes held at one moment
    processes: int = 0


@dataclass
class Results:
    quick: bool
    command: str
    started: datetime
    machine: dict[str, str] = field(default_factory=dict)
    imports: list[dict[str, Any]] = field(default_factory=list)
    due: list[dict[str, Any]] = field(default_factory=list)
    dry_runs: list[dict[str, Any]] = field(default_factory=list)
    sends: list[dict[str, Any]] = field(default_factory=list)
    no_transport: list[dict[str, Any]] = field(default_factory=list)
    references: dict[str, Any] = field(default_factory=dict)
    scripts: dict[str, str] = field(default_factory=dict)
    startup: dict[str, Any] = field(default_factory=dict)  # benchmarks/startup.py --json
    profiles: dict[str, str] = field(default_factory=dict)  # send path: profiles.py's summary
    notes: list[str] = field(default_factory=list)


# -- running children ---------------------------------------------------------------------------


def run_children(commands: list[list[str]], envs: list[dict[str, str]]) -> Measured:
    """Start every command at once, wait for all; wall time, CPU, the largest peak RSS of one
    process and the sum of every process's peak, children of the commands included."""
    with tempfile.TemporaryDirectory() as tmp:
        logs = [Path(tmp) / f"{i}.out" for i in range(len(commands))]
        started = time.perf_counter()
        procs = []
        for command, env, log in zip(commands, envs, logs, strict=True):
            with log.open("wb") as out:
                procs.append(subprocess.Popen(command, env=env, cwd=REPO, stdout=out, stderr=out))
        sampler = TreeSampler([p.pid for p in procs])
        sampler.start()
        cpu, exact, failed = 0.0, {}, []
        for proc in procs:
            sampler.sample()  # a last look at this tree before its root is reaped
            _pid, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            # RUSAGE_BOTH: the CPU of the process and of the children it waited for (the workers)
            cpu += usage.ru_utime + usage.ru_stime
            exact[proc.pid] = usage.ru_maxrss / 1024  # KiB on Linux
            if proc.returncode != 0:
                failed.append(proc.returncode)
        seconds = time.perf_counter() - started
        tree = sampler.stop()
        outputs = [log.read_text(errors="replace") for log in logs]
    if failed:
        raise RuntimeError(f"{commands[0]} failed: {outputs}")
    peaks = tree.peaks | {pid: max(mb, tree.peaks.get(pid, 0.0)) for pid, mb in exact.items()}
    return Measured(
        seconds,
        cpu,
        max(peaks.values()),
        outputs,
        total_mb=sum(peaks.values()),
        together_mb=tree.together_mb,
        processes=len(peaks),
    )


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def newsletter(*args: str) -> list[str]:
    return python("-m", "newsletter", *args)


def base_env(url: str, **extra: str) -> dict[str, str]:
    """The environment of a child; ``url`` "" for one that opens no database (the project's
    default then: an empty NEWSLETTER_DATABASE_URL is refused as a setting)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env |= {
        "NEWSLETTER_PROJECT_DIR": str(REPO),
        "NEWSLETTER_SECRET_KEY": SECRET,
        "PYTHONPATH": str(REPO),
    }
    if url:
        env["NEWSLETTER_DATABASE_URL"] = url
    return env | extra


@dataclass
class Fake:
    url: str
    delay: float
    process: subprocess.Popen[str]

    def stats(self) -> dict[str, float]:
        import requests

        return dict(requests.get(self.url + "/stats", timeout=10).json())


@contextmanager
def fake(script: str, delay: float = 0.0) -> Iterator[Fake]:
    """A fake provider (benchmarks/``script``) on a free port, answering after ``delay``
    seconds: fake_postmark.py (and fake_ses.py) wait that long, fake_merge.py answers at once."""
    extra = ("--delay", str(delay)) if delay else ()
    process = subprocess.Popen(
        python(str(BENCH / script), *extra), stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline().split()[1])
        yield Fake(f"http://127.0.0.1:{port}", delay, process)
    finally:
        process.kill()
        process.communicate(timeout=30)


# -- the suite --------------------------------------------------------------------------------


class Suite:
    def __init__(self, args: argparse.Namespace, folder: Path):
        self.sizes = Sizes.of(args.quick)
        self.folder = folder
        self.pg_url = args.postgres or ""
        self.ses_url = ""  # the fake SES's, once started
        self.merge_url = ""  # the fake SendGrid and Mailgun's, once started
        command = shlex.join(["make", "bench", *(["QUICK=1"] if args.quick else [])])
        self.results = Results(args.quick, command, datetime.now(UTC))
        self.lessons = [
            m.id
            for m in Project(load_settings(REPO, secret_key=SECRET)).content.lessons(
                "protect-your-back"
            )
        ]

    def run(self, skip_scripts: bool) -> Results:
        self.results.machine = machine(self.pg_url if self.postgres_ok() else "")
        if not skip_scripts:
            self.existing_scripts()
        with (
            fake("fake_postmark.py") as fast,
            fake("fake_postmark.py", LATENCY) as slow,
            fake("fake_ses.py") as ses,
            fake("fake_merge.py") as merge,
        ):
            self.ses_url, self.merge_url = ses.url, merge.url
            self.references(fast, slow)
            for backend in self.backends():
                self.backend(backend, fast, slow)
        return self.results

    def postgres_ok(self) -> bool:
        if not self.pg_url:
            return False
        try:
            engine = sa.create_engine(normalise_url(self.pg_url))
            with engine.connect():
                pass
            engine.dispose()
        except sa.exc.SQLAlchemyError as err:
            self.results.notes.append(
                f"PostgreSQL at {self.pg_url} not reachable ({err.__class__.__name__}): skipped"
            )
            self.pg_url = ""
            return False
        return True

    def backends(self) -> list[str]:
        if not self.pg_url:
            note = "PostgreSQL: skipped (set NEWSLETTER_BENCH_POSTGRES_URL to a reachable database)"
            if note not in self.results.notes:
                self.results.notes.append(note)
            return ["sqlite"]
        return ["sqlite", "postgresql"]

    # -- the issues' own scripts ----------------------------------------------------------------

    def existing_scripts(self) -> None:
        log("benchmarks/startup.py")
        runs = "5" if self.results.quick else "15"
        done = run_children(
            [python("benchmarks/startup.py", "--json", "--runs", runs)], [os.environ.copy()]
        )
        self.results.startup = json.loads(done.outputs[0])
        rows = str(self.sizes.imported)
        log("benchmarks/import_csv.py")
        done = run_children([python("benchmarks/import_csv.py", "--rows", rows)], [base_env("")])
        self.results.scripts["import_csv"] = done.outputs[0].strip()
        log("benchmarks/render.py")
        render = ["benchmarks/render.py"] + (
            ["--subscribers", "2000", "--rounds", "1"] if self.results.quick else []
        )
        try:
            done = run_children([python(*render)], [base_env("")])
            self.results.scripts["render"] = done.outputs[0].strip()
        except RuntimeError as err:  # it exits 1 when it misses its target: keep its table
            self.results.scripts["render"] = str(err)
        quick = self.results.quick
        log("benchmarks/mime.py")
        mime = ["benchmarks/mime.py", *(["--emails", "300", "--rounds", "1"] if quick else [])]
        self.results.scripts["mime"] = run_children([python(*mime)], [base_env("")]).outputs[0]
        log("benchmarks/json_encoders.py")
        encoders = ["benchmarks/json_encoders.py", *(["--rounds", "1"] if quick else [])]
        done = run_children([python(*encoders)], [base_env("")])
        self.results.scripts["json_encoders"] = done.outputs[0]
        log("benchmarks/concurrency.py")  # requests in flight (issue 16, item 6)
        in_flight = ["benchmarks/concurrency.py", *(["--quick"] if quick else [])]
        done = run_children([python(*in_flight)], [base_env("")])
        self.results.scripts["concurrency"] = done.outputs[0].strip()

    # -- references -------------------------------------------------------------------------

    def references(self, fast: Fake, slow: Fake) -> None:
        refs = self.results.references
        log("references: bare limit, 1 and 4 loops")
        before = fast.stats()
        one = self.bare(fast, self.sizes.due, 1)
        after = fast.stats()
        cpu = after["cpu_seconds"] - before["cpu_seconds"]
        refs["fake_capacity"] = (after["messages"] - before["messages"]) / max(1e-9, cpu)
        refs["bare"] = {1: rate_of(one[0]), 4: together(self.bare(fast, self.sizes.due // 4, 4))}
        refs["bytes_per_message"] = json.loads(one[0])["bytes_per_message"]
        log("references: bare limit with the fake answering after 50 ms")
        slow_messages = max(2_000, self.sizes.due // 10)
        refs["bare_slow"] = {
            1: rate_of(self.bare(slow, slow_messages, 1)[0]),
            4: together(self.bare(slow, slow_messages, 4)),
        }
        log("references: naive pipeline")
        due = str(self.sizes.due)
        sample = str(self.sizes.naive_sample)
        naive = run_children(
            [python("benchmarks/references.py", "naive", fast.url, "--sample", sample)],
            [base_env("")],
        )
        refs["naive"] = rate_of(naive.outputs[0])
        log("references: the honest bare client")
        honest = run_children(
            [python("benchmarks/references.py", "honest", fast.url, "--messages", due)],
            [base_env("")],
        )
        refs["honest"] = rate_of(honest.outputs[0])
        refs["naive_sample"] = self.sizes.naive_sample
        log("references: bare file writes")
        files = self.folder / "bare-files"
        done = run_children(
            [
                python(
                    "benchmarks/references.py", "bare-files", str(files), "--messages", str(FILES)
                )
            ],
            [base_env("")],
        )
        refs["bare_files"] = rate_of(done.outputs[0])
        shutil.rmtree(files, ignore_errors=True)

    def bare(self, fake: Fake, messages: int, loops: int) -> list[str]:
        """The bare loop in ``loops`` processes at once (each sends ``messages``)."""
        start_at = time.time() + 5.0  # after every process has rendered its batch
        command = python(
            "benchmarks/references.py",
            "bare",
            fake.url,
            "--messages",
            str(messages),
            "--start-at",
            str(start_at),
        )
        return run_children([command] * loops, [base_env("")] * loops).outputs

    # -- one backend ----------------------------------------------------------------------------

    def backend(self, backend: str, fast: Fake, slow: Fake) -> None:
        self.imports(backend)
        for subscribers in self.sizes.lists:
            with self.database(backend, subscribers) as (url, restore):
                self.due_query(backend, subscribers, url)
                self.dry_run(backend, subscribers, url)
                self.send(backend, subscribers, url, restore, fast, "postmark", 1)
                self.send(backend, subscribers, url, restore, fast, "postmark", 4)
                if subscribers == self.sizes.lists[0]:
                    self.in_process(backend, url, restore)
                    self.send(backend, subscribers, url, restore, fast, "file", 1)
                    self.send(backend, subscribers, url, restore, fast, "ses", 1)
                    self.send(backend, subscribers, url, restore, fast, "sendgrid", 1)
                    self.send(backend, subscribers, url, restore, fast, "mailgun", 1)
                    if backend == "sqlite":
                        self.profiles(url, restore, fast)
                    # A ratio of two runs on two shared cores: the best of three of each.
                    self.send(backend, subscribers, url, restore, slow, "postmark", 1, 3)
                    self.send(backend, subscribers, url, restore, slow, "postmark", 4, 3)

    @contextmanager
    def database(self, backend: str, subscribers: int) -> Iterator[tuple[str, Any]]:
        """A populated database and a function that makes its due lessons due again."""
        log(f"{backend}: {subscribers:,} subscribers, {self.sizes.due:,} due")
        if backend == "sqlite":
            with sqlite_database(self.folder, f"pristine-{subscribers}") as pristine:
                self._populate(pristine, subscribers)
                work = self.folder / "work.db"

                def restore() -> None:
                    for leftover in self.folder.glob("work.db*"):
                        leftover.unlink()
                    shutil.copyfile(pristine.removeprefix("sqlite:///"), work)

                restore()
                yield f"sqlite:///{work}", restore
            return
        with postgres_schema(self.pg_url) as url:
            self._populate(url, subscribers)

            def again() -> None:
                store = Store(url)
                reset(store, self.sizes.due)
                store.dispose()

            yield url, again

    def _populate(self, url: str, subscribers: int) -> None:
        store = Store(url)
        started = time.perf_counter()
        populate(store, subscribers, self.sizes.due, self.lessons)
        store.dispose()
        log(f"  generated in {time.perf_counter() - started:.1f} s")

    def imports(self, backend: str) -> None:
        rows = self.sizes.imported
        log(f"{backend}: import {rows:,} rows")
        with self.empty_database(backend) as url:
            done = run_children(
                [python("benchmarks/workloads.py", "import", url, str(rows), str(self.folder))],
                [base_env(url)],
            )
        figures = json.loads(done.outputs[0])
        self.results.imports.append({"backend": backend, **figures, "peak_mb": done.peak_mb})

    @contextmanager
    def empty_database(self, backend: str) -> Iterator[str]:
        if backend == "sqlite":
            with sqlite_database(self.folder, "import") as url:
                yield url
        else:
            with postgres_schema(self.pg_url) as url:
                yield url

    def due_query(self, backend: str, subscribers: int, url: str) -> None:
        log("  due, nothing due")
        query = run_children([python("benchmarks/workloads.py", "due", url)], [base_env(url)])
        moment = (NOW - timedelta(days=1)).isoformat()
        cli = run_children([newsletter("due", "--now", moment)], [base_env(url)])
        self.results.due.append(
            {
                "backend": backend,
                "subscribers": subscribers,
                **json.loads(query.outputs[0]),
                "cli_seconds": cli.seconds,
                "peak_mb": cli.peak_mb,
            }
        )

    def dry_run(self, backend: str, subscribers: int, url: str) -> None:
        log("  send --dry-run")
        done = run_children(
            [newsletter("-v", "send", "--dry-run", "--now", NOW.isoformat())], [base_env(url)]
        )
        rendered = int(done.outputs[0].split("dry run: ")[1].split()[0])
        assert rendered == self.sizes.due, done.outputs
        self.results.dry_runs.append(
            {
                "backend": backend,
                "subscribers": subscribers,
                "messages": rendered,
                "seconds": done.seconds,
                "cpu_seconds": done.cpu_seconds,
                "peak_mb": done.peak_mb,
            }
        )

    def in_process(self, backend: str, url: str, restore: Any) -> None:
        """`send --dry-run` and `send` with no transport, both timed in-process the same way
        (workloads.py): their ratio is the ledger's cost, start-up left out of both."""
        log("  send --dry-run, in-process")
        done = run_children([python("benchmarks/workloads.py", "dry-run", url)], [base_env(url)])
        dry = json.loads(done.outputs[0])
        assert dry["messages"] == self.sizes.due, done.outputs
        log("  send with no transport (a provider that accepts everything at once)")
        done = run_children(
            [python("benchmarks/workloads.py", "no-transport", url)], [base_env(url)]
        )
        figures = json.loads(done.outputs[0])
        assert figures["messages"] == self.sizes.due, done.outputs
        self.results.no_transport.append({"backend": backend, **figures, "dry_run": dry})
        restore()

    def profiles(self, url: str, restore: Any, fake: Fake) -> None:
        """Each send path once under pyinstrument (profiles.py), in-process on SQLite."""
        for path in ("dry-run", "no-transport", "postmark", "file", "ses", "sendgrid", "mailgun"):
            log(f"  profile: {path}")
            most = PROFILED_SES if path == "ses" else PROFILED
            command = python("benchmarks/profiles.py", path, url, "--limit", str(most))
            provider = path if path not in ("dry-run", "no-transport") else "file"
            done = run_children([command], [self.send_env(url, fake, provider)])
            self.results.profiles[path] = done.outputs[0].strip()
            shutil.rmtree(self.folder / "outbox", ignore_errors=True)
            restore()

    def send_env(self, url: str, fake: Fake, provider: str) -> dict[str, str]:
        """A child's environment with ``provider`` configured against the suite's fakes."""
        return base_env(
            url,
            NEWSLETTER_PROVIDER=provider,
            NEWSLETTER_POSTMARK_TOKEN="bench",
            NEWSLETTER_POSTMARK_API_URL=fake.url,
            NEWSLETTER_OUTBOX_DIR=str(self.folder / "outbox"),
            NEWSLETTER_SES_REGION="eu-west-1",
            NEWSLETTER_SES_API_URL=self.ses_url,
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
            NEWSLETTER_SENDGRID_API_KEY="bench",
            NEWSLETTER_SENDGRID_API_URL=self.merge_url,
            NEWSLETTER_MAILGUN_API_KEY="bench",
            NEWSLETTER_MAILGUN_DOMAIN="mg.example.org",
            NEWSLETTER_MAILGUN_API_URL=self.merge_url,
        )

    def send(
        self,
        backend: str,
        subscribers: int,
        url: str,
        restore: Any,
        fake: Fake,
        provider: str,
        workers: int,
        rounds: int = 1,
    ) -> None:
        """`newsletter send --workers N` (one command); the fastest of ``rounds`` runs."""
        slow = ", the fake answering after 50 ms" if fake.delay else ""
        best = f", best of {rounds}" if rounds > 1 else ""
        log(f"  send: {provider}, {workers} worker(s){slow}{best}")
        outbox = self.folder / "outbox"
        env = self.send_env(url, fake, provider)
        most = {"file": FILES, "ses": SES_EMAILS}.get(provider)
        expected = min(self.sizes.due, most) if most else self.sizes.due
        limit = ("--limit", str(expected)) if most else ()
        command = newsletter(
            "-v", "send", "--now", NOW.isoformat(), "--workers", str(workers), *limit
        )
        runs = []
        for _ in range(rounds):
            done = run_children([command], [env])
            sent = int(done.outputs[0].split("send: ")[1].split()[0])
            assert sent == expected, done.outputs
            runs.append(done)
            shutil.rmtree(outbox, ignore_errors=True)
            restore()
        done = min(runs, key=lambda d: d.seconds)
        self.results.sends.append(
            {
                "backend": backend,
                "subscribers": subscribers,
                "provider": provider,
                "workers": workers,
                "latency": fake.delay,
                "rounds": rounds,
                "messages": expected,
                "seconds": done.seconds,
                "cpu_seconds": done.cpu_seconds,
                "peak_mb": done.peak_mb,
                "total_mb": done.total_mb,
                "together_mb": done.together_mb,
                "processes": done.processes,
            }
        )


def together(outputs: list[str]) -> float:
    """Messages per second of loops that ran at the same time, first start to last end."""
    results = [json.loads(out) for out in outputs]
    span = max(r["ended"] for r in results) - min(r["started"] for r in results)
    return sum(r["messages"] for r in results) / span


def rate_of(output: str) -> float:
    figures = json.loads(output)
    return float(figures["messages"]) / float(figures["seconds"])


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: checks the scripts")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("NEWSLETTER_BENCH_POSTGRES_URL")
        or os.environ.get("NEWSLETTER_TEST_POSTGRES_URL"),
        help="a PostgreSQL database to measure in (a schema is created and dropped)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument(
        "--skip-scripts", action="store_true", help="skip render.py and import_csv.py"
    )
    parser.add_argument(
        "--folder", type=Path, default=None, help="where the databases go (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
        results = Suite(args, Path(tmp)).run(args.skip_scripts)
    write_report(results, args.out)
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
