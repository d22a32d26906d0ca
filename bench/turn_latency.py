"""Turn latency and throughput of the real service, measured by customers talking to its HTTP API."""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from _common import (
    REPO_ROOT,
    background_busy,
    code_fingerprint,
    latency_summary,
    machine_cpu_times,
    machine_info,
    named_cpu_seconds,
    process_tree,
    read_jsonl,
    rss_mb,
    tree_cpu_seconds,
    wait_for_quiet,
    write_result,
)
from lean_http import LeanClient, LeanHTTPError

EVAL_DIR = REPO_ROOT / "demo" / "eval"
CLIENT_ERRORS = (httpx.HTTPError, LeanHTTPError)
OPENING_INTENTS = ("greet",)
CLOSING_INTENTS = ("thank_you", "goodbye")
DEFAULT_MIX = {"kb": 0.60, "unanswerable": 0.15, "smalltalk": 0.25}
T = TypeVar("T")


# --- what customers say -----------------------------------------------------------------------------


@dataclass
class Corpus:
    """Texts a simulated customer can send, by kind."""

    kb: list[str]
    unanswerable: list[str]
    opening: list[str]
    closing: list[str]

    @classmethod
    def load(cls, eval_dir: Path = EVAL_DIR) -> Corpus:
        """Questions from the demo eval sets; small talk from the held-out intent examples."""
        intents = read_jsonl(eval_dir / "intents_heldout.jsonl")
        return cls(
            kb=[r["text"] for r in read_jsonl(eval_dir / "kb_questions.jsonl")],
            unanswerable=[r["text"] for r in read_jsonl(eval_dir / "kb_unanswerable.jsonl")],
            opening=[r["text"] for r in intents if r["intent"] in OPENING_INTENTS],
            closing=[r["text"] for r in intents if r["intent"] in CLOSING_INTENTS],
        )


@dataclass
class Conversation:
    """One customer conversation: its credentials and the messages it still has to send."""

    id: str
    token: str
    script: list[tuple[str, str]]
    sent: int = 0
    ended: bool = False  # handed off (the bot would stay silent) or script finished

    def next_message(self) -> tuple[str, str]:
        kind, text = self.script[self.sent]
        self.sent += 1
        if self.sent >= len(self.script):
            self.ended = True
        return kind, text


class ScriptMaker:
    """Builds conversation scripts: kinds drawn from the mix, greetings first, thanks/goodbyes last."""

    def __init__(self, corpus: Corpus, mix: dict[str, float], length: int, rng: random.Random) -> None:
        self.corpus = corpus
        self.kinds = list(mix)
        self.weights = [mix[k] for k in self.kinds]
        self.length = length
        self.rng = rng

    def script(self) -> list[tuple[str, str]]:
        kinds = self.rng.choices(self.kinds, self.weights, k=self.length)
        opening: list[tuple[str, str]] = []
        middle: list[tuple[str, str]] = []
        closing: list[tuple[str, str]] = []
        for kind in kinds:
            if kind == "smalltalk":
                # The first small-talk line of a conversation is a greeting, later ones close it.
                if not opening and not middle:
                    opening.append(("smalltalk", self.rng.choice(self.corpus.opening)))
                else:
                    closing.append(("smalltalk", self.rng.choice(self.corpus.closing)))
            elif kind == "kb":
                middle.append(("kb", self.rng.choice(self.corpus.kb)))
            else:
                middle.append(("unanswerable", self.rng.choice(self.corpus.unanswerable)))
        return opening + middle + closing


# --- measurements -----------------------------------------------------------------------------------


@dataclass
class Sample:
    """One customer message as the client saw it."""

    kind: str
    latency_ms: float  # POST .../messages, request sent to response read
    from_schedule_ms: float | None  # open loop: intended send time to response read
    status: int | None
    decision: str | None
    error: str | None = None


@dataclass
class Recorder:
    """Samples of one phase."""

    samples: list[Sample] = field(default_factory=list)
    create_ms: list[float] = field(default_factory=list)
    create_errors: int = 0
    dropped: int = 0
    errors: list[str] = field(default_factory=list)

    def note_error(self, text: str) -> None:
        if len(self.errors) < 20:
            self.errors.append(text)


class Driver:
    """Creates conversations and sends messages through the customer API."""

    def __init__(self, client: Any, scripts: ScriptMaker) -> None:
        self.client = client
        self.scripts = scripts
        self.recorder = Recorder()

    async def new_conversation(self) -> Conversation | None:
        t0 = time.perf_counter()
        try:
            r = await self.client.post("/api/conversations", {})
            elapsed = (time.perf_counter() - t0) * 1000
            if r.status_code != 201:
                self.recorder.create_errors += 1
                self.recorder.note_error(f"create: HTTP {r.status_code} {r.text[:200]}")
                return None
            body = r.json()
        except CLIENT_ERRORS as e:
            self.recorder.create_errors += 1
            self.recorder.note_error(f"create: {type(e).__name__}: {e}")
            return None
        self.recorder.create_ms.append(elapsed)
        return Conversation(body["conversation_id"], body["customer_token"], self.scripts.script())

    async def send(self, conv: Conversation, scheduled: float | None = None) -> Sample:
        kind, text = conv.next_message()
        payload = {"text": text, "client_message_id": uuid.uuid4().hex}
        headers = {"Authorization": f"Bearer {conv.token}"}
        t0 = time.perf_counter()
        status: int | None = None
        decision: str | None = None
        error: str | None = None
        try:
            r = await self.client.post(f"/api/conversations/{conv.id}/messages", payload, headers)
            status = r.status_code
            if status == 200:
                body = r.json()
                decision = body.get("decision")
                if body.get("handed_off"):
                    conv.ended = True
            else:
                error = f"HTTP {status}: {r.text[:200]}"
        except CLIENT_ERRORS as e:
            error = f"{type(e).__name__}: {e}"
        t1 = time.perf_counter()
        sample = Sample(kind, (t1 - t0) * 1000, (t1 - scheduled) * 1000 if scheduled is not None else None,
                        status, decision, error)
        if error:
            conv.ended = True  # do not keep talking into a broken conversation
            self.recorder.note_error(f"message: {error}")
        self.recorder.samples.append(sample)
        return sample


async def closed_loop(driver: Driver, messages: int, concurrency: int) -> float:
    """``concurrency`` customers, each sending its next message as soon as the previous reply arrives."""
    budget = [messages]

    async def customer() -> None:
        conv: Conversation | None = None
        failures = 0
        while budget[0] > 0:
            budget[0] -= 1  # claim the message before any await, so exactly `messages` are sent
            while conv is None or conv.ended:
                conv = await driver.new_conversation()
                if conv is None:
                    failures += 1
                    if failures > 20:
                        return  # the service refuses new conversations; the errors are recorded
                    await asyncio.sleep(0.05)
            await driver.send(conv)

    t0 = time.perf_counter()
    await asyncio.gather(*(customer() for _ in range(concurrency)))
    return time.perf_counter() - t0


async def open_loop(driver: Driver, messages: int, rate: float, poisson: bool, max_inflight: int,
                    rng: random.Random) -> float:
    """Messages arrive at ``rate`` per second whatever the service does (Poisson or evenly spaced).

    Each arrival takes an idle conversation (or starts one) so no conversation ever has two messages in
    flight, like a real chat. Arrivals beyond ``max_inflight`` outstanding requests are dropped and counted.
    """
    loop = asyncio.get_running_loop()
    idle: collections.deque[Conversation] = collections.deque()
    inflight: set[asyncio.Task[None]] = set()

    async def arrival(scheduled_perf: float) -> None:
        conv = idle.popleft() if idle else None
        while conv is not None and conv.ended:
            conv = idle.popleft() if idle else None
        if conv is None:
            conv = await driver.new_conversation()
            if conv is None:
                return
        await driver.send(conv, scheduled=scheduled_perf)
        if not conv.ended:
            idle.append(conv)

    start_loop = loop.time() + 0.05
    offset_perf = time.perf_counter() - loop.time()
    t = start_loop
    for i in range(messages):
        if i:
            t += rng.expovariate(rate) if poisson else 1.0 / rate
        delay = t - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(inflight) >= max_inflight:
            driver.recorder.dropped += 1
            continue
        task = asyncio.create_task(arrival(t + offset_perf))
        inflight.add(task)
        task.add_done_callback(inflight.discard)
    if inflight:
        await asyncio.gather(*inflight)
    return time.perf_counter() - (start_loop + offset_perf)


# --- the service under test -------------------------------------------------------------------------


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def frontdesk_command() -> list[str]:
    """The installed ``frontdesk`` entry point next to this interpreter."""
    exe = Path(sys.executable).parent / "frontdesk"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, str(REPO_ROOT / "cli.py")]


@contextlib.contextmanager
def throwaway_postgres(url: str) -> Iterator[str]:
    """Create the (``frontdesk_bench*``) database named in ``url``, yield the URL, drop it afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    name = parsed.database or "frontdesk_bench"
    if not name.startswith("frontdesk_bench"):
        raise SystemExit(f"refusing to create/drop database {name!r}: its name must start with 'frontdesk_bench'")
    target = parsed.set(database=name).render_as_string(hide_password=False)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield target
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class ServerProcess:
    """``frontdesk serve`` on a free port with a temporary data folder and default settings."""

    def __init__(self, database_url: str | None, extra_env: dict[str, str], keep_dir: bool = False,
                 preload: Sequence[Path] = (), workers: int = 1) -> None:
        self.database_url = database_url
        self.workers = workers
        self.extra_env = extra_env
        self.preload = preload
        self.keep_dir = keep_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = Path(tempfile.mkdtemp(prefix="frontdesk-bench-"))
        self.log_path = self.data_dir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_s: float | None = None

    def start(self, timeout: float) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_") and k != "DATABASE_URL"}
        env.update({"FRONTDESK_DATA_DIR": str(self.data_dir), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        env.update(self.extra_env)
        if self.preload:
            # An experiment without touching product code: the file runs at interpreter start-up.
            folder = self.data_dir / "preload"
            folder.mkdir()
            paths = [str(Path(p).resolve()) for p in self.preload]
            (folder / "sitecustomize.py").write_text(
                f"import runpy\nfor _path in {paths!r}:\n    runpy.run_path(_path)\n")
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), env.get("PYTHONPATH")]))
        log = self.log_path.open("wb")
        t0 = time.perf_counter()
        # cwd is the temporary folder so that no .env file of the checkout is read.
        self.proc = subprocess.Popen([*frontdesk_command(), "serve", "--port", str(self.port),
                                      "--workers", str(self.workers)], cwd=self.data_dir,
                                     env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = t0 + timeout
        with httpx.Client(base_url=self.url, timeout=2.0) as client:
            while time.perf_counter() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the server exited with code {self.proc.returncode}:\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get("/readyz").status_code == 200:
                        self.startup_s = time.perf_counter() - t0
                        return
                time.sleep(0.25)
        raise RuntimeError(f"the server was not ready after {timeout:.0f} s:\n{self.log_tail()}")

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if not self.keep_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


# --- running a benchmark ----------------------------------------------------------------------------


async def http_floor(client: Any, requests: int) -> dict[str, Any]:
    """Sequential ``GET /healthz``: the cost of HTTP + framework + client with no bot work."""
    ms: list[float] = []
    for _ in range(requests):
        t0 = time.perf_counter()
        r = await client.get("/healthz")
        ms.append((time.perf_counter() - t0) * 1000)
        if r.status_code != 200:
            raise SystemExit(f"GET /healthz answered {r.status_code}")
    return latency_summary(ms)


def summarize(rec: Recorder, wall_s: float) -> dict[str, Any]:
    """Latency percentiles, throughput, decision mix and errors of one phase."""
    ok = [s for s in rec.samples if s.error is None]
    errors = [s for s in rec.samples if s.error is not None]
    by_kind: dict[str, list[float]] = collections.defaultdict(list)
    by_decision: dict[str, list[float]] = collections.defaultdict(list)
    for s in ok:
        by_kind[s.kind].append(s.latency_ms)
        by_decision[s.decision or "?"].append(s.latency_ms)
    mix = collections.Counter(s.decision or "?" for s in ok)
    sched = [s.from_schedule_ms for s in ok if s.from_schedule_ms is not None]
    return {
        "messages_sent": len(rec.samples),
        "messages_ok": len(ok),
        "errors": len(errors) + rec.create_errors,
        "message_errors": len(errors),
        "create_errors": rec.create_errors,
        "dropped_arrivals": rec.dropped,
        "error_examples": rec.errors[:10],
        "wall_seconds": round(wall_s, 3),
        "messages_per_second": round(len(ok) / wall_s, 2) if wall_s > 0 else None,
        "latency_ms": latency_summary([s.latency_ms for s in ok]),
        "latency_from_schedule_ms": latency_summary(sched) if sched else None,
        "latency_by_kind_ms": {k: latency_summary(v) for k, v in sorted(by_kind.items())},
        "latency_by_decision_ms": {k: latency_summary(v) for k, v in sorted(by_decision.items())},
        "decision_mix": dict(mix.most_common()),
        "decision_share": {k: round(v / len(ok), 4) for k, v in mix.most_common()} if ok else {},
        "conversations_created": len(rec.create_ms),
        "create_conversation_ms": latency_summary(rec.create_ms),
    }


async def run_load(args: argparse.Namespace, base_url: str, server_pid: int | None) -> dict[str, Any]:
    """Floor probe, warm-up, then one measured phase per rate (or one closed-loop phase)."""
    rng = random.Random(args.seed)
    scripts = ScriptMaker(Corpus.load(), parse_mix(args.mix), args.conversation_length, rng)
    max_conn = max(args.concurrency, args.max_inflight if args.rates else 0) + 8
    phases: list[dict[str, Any]] = []
    async with _client(args.client, base_url, max_conn, args.timeout) as client:
        floor = await http_floor(client, args.floor_requests) if args.floor_requests else None

        warm = Driver(client, scripts)
        warm_wall = await closed_loop(warm, args.warmup, min(args.concurrency, max(args.warmup, 1)))

        profiler = start_py_spy(args.py_spy, server_pid, args.py_spy_gil) if args.py_spy else None
        profile_t0 = time.perf_counter()
        try:
            for n, rate in enumerate(args.rates or [None]):
                if n:
                    await asyncio.sleep(args.pause)
                messages = round(rate * args.duration) if rate and args.duration else args.messages
                driver = Driver(client, scripts)
                cpu0 = tree_cpu_seconds(server_pid) if server_pid else None
                db0 = named_cpu_seconds("postgres")
                client0 = time.process_time()
                busy0, total0 = machine_cpu_times()
                if rate:
                    wall = await open_loop(driver, messages, rate, args.arrival == "poisson", args.max_inflight, rng)
                else:
                    wall = await closed_loop(driver, messages, args.concurrency)
                busy1, total1 = machine_cpu_times()
                client_cpu = time.process_time() - client0
                cpu1 = tree_cpu_seconds(server_pid) if server_pid else None
                db_cpu = named_cpu_seconds("postgres") - db0
                phase = {"mode": "open" if rate else "closed", "rate": rate,
                         "concurrency": None if rate else args.concurrency, **summarize(driver.recorder, wall)}
                phase["cpu"] = cpu_block(phase, wall, cpu0, cpu1, client_cpu, busy1 - busy0, total1 - total0)
                phase["cpu"]["postgres_cpu_ms_per_message"] = (
                    round(db_cpu * 1000 / max(phase["messages_ok"], 1), 2) if db_cpu > 0 else None)
                if server_pid:
                    phase["rss_mb"] = {str(p): rss_mb(p) for p in process_tree(server_pid)}
                phases.append(phase)
                print_phase(phase)
        finally:
            if profiler:
                stop_py_spy(profiler)
    profiled_seconds = round(time.perf_counter() - profile_t0, 2) if args.py_spy else None
    return {
        "py_spy": {"file": str(args.py_spy), "gil_only": args.py_spy_gil, "rate_hz": 250,
                   "seconds": profiled_seconds} if args.py_spy else None,
        "http_floor_healthz_ms": floor,
        "warmup": {"messages": len(warm.recorder.samples), "wall_seconds": round(warm_wall, 3),
                   "errors": sum(1 for s in warm.recorder.samples if s.error)},
        "phases": phases,
    }


class _HttpxAdapter:
    """httpx with the lean client's call shape."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def get(self, path: str) -> httpx.Response:
        return await self.client.get(path)

    async def post(self, path: str, json_body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.post(path, json=json_body, headers=headers)


@contextlib.asynccontextmanager
async def _client(kind: str, base_url: str, max_connections: int, timeout: float) -> AsyncIterator[Any]:
    if kind == "httpx":
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        async with httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits) as client:
            yield _HttpxAdapter(client)
        return
    lean = LeanClient(base_url, max_connections, timeout)
    try:
        yield lean
    finally:
        await lean.aclose()


def cpu_block(phase: dict[str, Any], wall: float, cpu0: float | None, cpu1: float | None, client_cpu: float,
              busy: float, total: float) -> dict[str, float | None]:
    """Cores used by the server, the client and everything else during a phase."""
    ncpu = os.cpu_count() or 1
    machine = busy / total * ncpu if total > 0 else None
    server = (cpu1 - cpu0) / wall if cpu0 is not None and cpu1 is not None else None
    client = client_cpu / wall
    return {
        "server_cpu_seconds": round(cpu1 - cpu0, 3) if cpu0 is not None and cpu1 is not None else None,
        "server_cores_used": round(server, 3) if server is not None else None,
        "server_cpu_ms_per_message": round((cpu1 - cpu0) * 1000 / max(phase["messages_ok"], 1), 2)
        if cpu0 is not None and cpu1 is not None else None,
        "client_cores_used": round(client, 3),
        "machine_cores_busy": round(machine, 3) if machine is not None else None,
        "other_cores_busy": round(machine - client - server, 3) if machine is not None and server is not None
        else None,
    }


def start_py_spy(output: Path, pid: int | None, gil_only: bool = False) -> subprocess.Popen[bytes]:
    """Sample the server (all threads, raw collapsed stacks) until :func:`stop_py_spy`.

    With ``gil_only`` only the thread holding the GIL is sampled: the share of samples over time shows how
    busy the GIL is, and what runs while holding it.
    """
    if pid is None:
        raise SystemExit("--py-spy needs the server pid (started here, or --server-pid with --url)")
    exe = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if exe is None:
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    output.parent.mkdir(parents=True, exist_ok=True)
    extra = ["--gil"] if gil_only else []
    proc = subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", "250", "--format", "raw", "--threads",
                             "--nonblocking", *extra, "--output", str(output)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # let it attach before the measured phase starts
    return proc


def stop_py_spy(proc: subprocess.Popen[bytes]) -> None:
    """Stop sampling; py-spy writes its output on SIGINT."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop when it is installed (cheaper client), else on asyncio's default loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def parse_mix(text: str) -> dict[str, float]:
    """``kb=0.6,unanswerable=0.15,smalltalk=0.25`` -> weights."""
    mix: dict[str, float] = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        key = key.strip()
        if key not in DEFAULT_MIX:
            raise argparse.ArgumentTypeError(f"unknown message kind {key!r}; use {', '.join(DEFAULT_MIX)}")
        mix[key] = float(value)
    if sum(mix.values()) <= 0:
        raise argparse.ArgumentTypeError("the mix weights must not all be zero")
    return mix


def parse_rates(text: str) -> list[float]:
    """``50`` or ``25,50,100`` -> rates in messages per second."""
    try:
        rates = [float(x) for x in text.split(",") if x.strip()]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not a list of rates: {text!r}") from e
    if not rates or any(r <= 0 for r in rates):
        raise argparse.ArgumentTypeError("rates must be positive")
    return rates


def parse_env(pairs: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--server-env expects KEY=VALUE, got {pair!r}")
        out[key] = value
    return out


def print_phase(m: dict[str, Any]) -> None:
    lat = m["latency_ms"]
    mode = (f"open loop {m['rate']:g} msg/s" if m["mode"] == "open"
            else f"closed loop, {m['concurrency']} concurrent customers")
    print(f"\n-- {mode}: {m['messages_sent']} messages --")
    print(f"turn latency ms   p50 {lat['p50']}   p95 {lat['p95']}   p99 {lat['p99']}   max {lat['max']}"
          f"   (mean {lat['mean']})")
    if m["latency_from_schedule_ms"]:
        s = m["latency_from_schedule_ms"]
        print(f"from schedule ms  p50 {s['p50']}   p95 {s['p95']}   p99 {s['p99']}   max {s['max']}")
    print(f"throughput        {m['messages_per_second']} msg/s over {m['wall_seconds']} s"
          f"   (+ {m['conversations_created']} conversations created)")
    print(f"errors            {m['errors']} (messages {m['message_errors']}, creates {m['create_errors']}),"
          f" dropped arrivals {m['dropped_arrivals']}")
    print("decision mix      " + ", ".join(f"{k} {v} ({m['decision_share'][k]:.0%})"
                                            for k, v in m["decision_mix"].items()))
    print("by kind (p50/p99) " + ", ".join(f"{k} {v['p50']}/{v['p99']}" for k, v in m["latency_by_kind_ms"].items()))
    cpu = m["cpu"]
    print(f"cpu               server {cpu['server_cores_used']} cores ({cpu['server_cpu_ms_per_message']} ms/msg),"
          f" client {cpu['client_cores_used']} cores, other {cpu['other_cores_busy']} cores"
          + (f", postgres {cpu['postgres_cpu_ms_per_message']} ms/msg" if cpu.get("postgres_cpu_ms_per_message")
             else ""))
    if m.get("rss_mb"):
        print("rss MB per process " + ", ".join(f"{pid}: {mb}" for pid, mb in m["rss_mb"].items()))
    for e in m["error_examples"][:5]:
        print(f"  error: {e}")


def print_report(result: dict[str, Any]) -> None:
    print(f"\n== turn latency summary ({result['server']['database']}) ==")
    if result.get("http_floor_healthz_ms"):
        f = result["http_floor_healthz_ms"]
        print(f"HTTP floor (GET /healthz, sequential): p50 {f['p50']} ms, p99 {f['p99']} ms")
    print(f"{'phase':<22} {'sent':>6} {'msg/s':>7} {'p50':>9} {'p95':>9} {'p99':>9} {'max':>9} {'err':>4} "
          f"{'drop':>5} {'srv cores':>9}")
    for m in result["phases"]:
        name = f"open {m['rate']:g}/s" if m["mode"] == "open" else f"closed C={m['concurrency']}"
        lat = m["latency_ms"]
        print(f"{name:<22} {m['messages_sent']:>6} {m['messages_per_second']:>7} {lat['p50']:>9} {lat['p95']:>9} "
              f"{lat['p99']:>9} {lat['max']:>9} {m['errors']:>4} {m['dropped_arrivals']:>5} "
              f"{m['cpu']['server_cores_used']!s:>9}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--messages", type=int, default=2000, help="measured messages (after the warm-up)")
    p.add_argument("--concurrency", type=int, default=16, help="closed loop: concurrent customers")
    p.add_argument("--rate", dest="rates", type=parse_rates, metavar="R[,R...]",
                   help="open loop: target arrivals per second; a comma list runs one phase per rate on the same "
                        "server (closed loop if omitted)")
    p.add_argument("--duration", type=float,
                   help="open loop: seconds per phase (sets the messages of each phase to rate * duration)")
    p.add_argument("--pause", type=float, default=3.0, help="seconds between open-loop phases")
    p.add_argument("--arrival", choices=("poisson", "uniform"), default="poisson", help="open-loop arrival process")
    p.add_argument("--max-inflight", type=int, default=256,
                   help="open loop: drop arrivals beyond this many outstanding requests")
    p.add_argument("--warmup", type=int, default=50, help="messages sent first and not counted")
    p.add_argument("--floor-requests", type=int, default=200, help="sequential GET /healthz before the warm-up")
    p.add_argument("--conversation-length", type=int, default=4, help="messages per conversation (fewer if handed off)")
    p.add_argument("--mix", default=",".join(f"{k}={v}" for k, v in DEFAULT_MIX.items()),
                   help="weights of message kinds: kb, unanswerable, smalltalk")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--timeout", type=float, default=60.0, help="per-request timeout in seconds")
    p.add_argument("--client", choices=("lean", "httpx"), default="lean",
                   help="the load generator's HTTP client: lean (bench/lean_http.py, a fraction of httpx's CPU per "
                        "request, so the client takes less of the cores it measures) or httpx")
    p.add_argument("--url", help="benchmark an already running server instead of starting one")
    p.add_argument("--server-pid", type=int, help="with --url: the server's pid, for CPU accounting and py-spy")
    p.add_argument("--database-url",
                   help="run the started server on PostgreSQL, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/"
                        "frontdesk_bench (the database is created and dropped; its name must start frontdesk_bench)")
    p.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment for the started server (e.g. FRONTDESK_LOG_LEVEL=WARNING); repeatable")
    p.add_argument("--server-preload", type=Path, action="append", default=[], metavar="FILE",
                   help="experiment: run this Python file in the server at start-up (installed as sitecustomize);"
                        " repeatable")
    p.add_argument("--workers", type=int, default=1, help="server processes (frontdesk serve --workers N)")
    p.add_argument("--startup-timeout", type=float, default=180.0)
    p.add_argument("--keep-data-dir", action="store_true", help="keep the server's temporary folder and log")
    p.add_argument("--py-spy", type=Path, metavar="FILE",
                   help="record the server with py-spy (raw collapsed stacks) while measuring")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help="before measuring, wait up to this long for other processes to go quiet")
    p.add_argument("--quiet-threshold", type=float, default=0.10,
                   help="share of all CPUs other processes may use to count as quiet")
    p.add_argument("--py-spy-gil", action="store_true", help="with --py-spy: sample only the GIL holder")
    p.add_argument("--label", default="", help="free text stored in the result")
    p.add_argument("--output", type=Path, help="result JSON path (default bench/results/turn_latency-<timestamp>.json)")
    p.add_argument("--no-write", action="store_true", help="print only, write no JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.url and args.database_url:
        raise SystemExit("--database-url only applies to a server started by this script")
    parse_mix(args.mix)
    info = machine_info()
    info["background_busy_share_before"] = round(background_busy(1.0), 3)

    server_info: dict[str, Any]
    with contextlib.ExitStack() as stack:
        if args.url:
            base_url, pid = args.url.rstrip("/"), args.server_pid
            server_info = {"url": base_url, "started_here": False, "database": "unknown (--url)"}
        else:
            db_url = stack.enter_context(throwaway_postgres(args.database_url)) if args.database_url else None
            server = ServerProcess(db_url, parse_env(args.server_env), keep_dir=args.keep_data_dir,
                                   preload=args.server_preload, workers=args.workers)
            stack.callback(server.stop)
            print(f"starting frontdesk serve on {server.url} (data in {server.data_dir}) ...", file=sys.stderr)
            server.start(args.startup_timeout)
            print(f"ready after {server.startup_s:.1f} s", file=sys.stderr)
            base_url, pid = server.url, server.pid
            server_info = {"url": base_url, "started_here": True, "pid": pid,
                           "startup_seconds": round(server.startup_s or 0, 2),
                           "database": "postgresql" if db_url else "sqlite", "workers": args.workers,
                           "extra_env": parse_env(args.server_env),
                           "preload": [str(p) for p in args.server_preload]}
        if args.wait_quiet:
            info["quiet_wait"] = wait_for_quiet(args.quiet_threshold, timeout=args.wait_quiet,
                                                log=lambda m: print(m, file=sys.stderr))
        load = run_async(run_load(args, base_url, pid))

    code_after = code_fingerprint()
    if code_after["sha256_16"] != info["code"]["sha256_16"]:
        print("warning: the product code changed while this benchmark ran", file=sys.stderr)
    result = {
        "benchmark": "turn_latency",
        "code_changed_during_run": code_after["sha256_16"] != info["code"]["sha256_16"],
        "label": args.label,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": info,
        "server": server_info,
        **load,
    }
    print_report(result)
    if not args.no_write:
        path = write_result("turn_latency", result, args.output)
        print(f"\nwrote {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")
    return 1 if any(p["errors"] for p in result["phases"]) else 0


if __name__ == "__main__":
    sys.exit(main())
