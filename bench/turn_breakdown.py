"""Where a turn's time goes inside the service: per-stage timings of the real pipeline, in process, no HTTP."""

from __future__ import annotations

import argparse
import collections
import functools
import os
import random
import runpy
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import REPO_ROOT, latency_summary, machine_cpu_times, machine_info, wait_for_quiet, write_result
from turn_latency import DEFAULT_MIX, Corpus, ScriptMaker

# Repository methods the web handler and the pipeline call during a turn.
STORE_METHODS = ("get_conversation", "begin_turn", "record_inbound", "turn_context", "transcript",
                 "recent_conversations", "record_turn", "replies_to", "handoff_for_message", "get_message",
                 "intent_history", "customer_profile")


class Timings:
    """Per-turn sums of stage durations (thread-local), plus stages that run on other threads (per call)."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self.turns: list[dict[str, float]] = []
        self.calls: collections.Counter[str] = collections.Counter()
        self.off_thread: dict[str, list[float]] = collections.defaultdict(list)  # ms per call
        self.recording = False

    def begin(self) -> None:
        self._local.acc = collections.defaultdict(float)
        self._local.calls = collections.Counter()

    def add(self, stage: str, ms: float) -> None:
        acc = getattr(self._local, "acc", None)
        if acc is not None:
            acc[stage] += ms
            self._local.calls[stage] += 1
        elif self.recording:  # e.g. the model forward on the encoder-batcher thread
            with self._lock:
                self.off_thread[stage].append(ms)

    def end(self, total_ms: float) -> None:
        acc, calls = self._local.acc, self._local.calls
        acc["total"] = total_ms
        with self._lock:
            self.turns.append(dict(acc))
            self.calls.update(calls)
        self._local.acc = None

    def wrap(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(stage, (time.perf_counter() - t0) * 1000)

        return timed


def instrument(services: Any, timings: Timings) -> None:
    """Wrap the collaborators of one Services instance (instance attributes only; no product code changes)."""
    from sqlalchemy import event

    store = services.conversations
    for name in STORE_METHODS:
        if hasattr(store, name):  # the same script measures versions before and after turn_context
            setattr(store, name, timings.wrap(f"db: {name}", getattr(store, name)))
    pipeline = services.pipeline
    batching = pipeline.encoder
    batching.inner.encode = timings.wrap("encoder: model forward", batching.inner.encode)
    batching.encode = timings.wrap("encoder: incl. batching queue", batching.encode)
    pipeline.classifier.predict = timings.wrap("intent classifier", pipeline.classifier.predict)
    pipeline.urgency.assess = timings.wrap("urgency rules", pipeline.urgency.assess)
    pipeline.retriever.search = timings.wrap("kb search (faiss + dedup)", pipeline.retriever.search)
    pipeline.composer.compose = timings.wrap("compose replies", pipeline.composer.compose)

    starts: dict[int, float] = {}

    def before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        starts[id(cursor)] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        t0 = starts.pop(id(cursor), None)
        if t0 is not None:
            timings.add("sql: cursor.execute (inside db)", (time.perf_counter() - t0) * 1000)

    event.listen(services.db.engine, "before_cursor_execute", before)
    event.listen(services.db.engine, "after_cursor_execute", after)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build the services like ``frontdesk serve`` does and run customer turns through the web handler's steps."""
    import asyncio
    import uuid

    from api.deps import customer_access
    from api.schemas import MessageIn
    from connectors.webchat import post_message
    from domain.enums import Channel
    from settings import Settings
    from wiring import build_services

    for preload in args.preload:
        runpy.run_path(str(preload))
    folder = Path(tempfile.mkdtemp(prefix="frontdesk-breakdown-"))
    values: dict[str, Any] = {"data_dir": folder}
    if args.database_url:
        values["database_url"] = args.database_url
    for key in [k for k in os.environ if k.startswith("FRONTDESK_") or k == "DATABASE_URL"]:
        del os.environ[key]  # default settings, like the server turn_latency.py starts
    for pair in args.server_env:
        key, _, value = pair.partition("=")
        os.environ[key] = value
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    t0 = time.perf_counter()
    services = build_services(settings)
    build_s = time.perf_counter() - t0
    timings = Timings()
    instrument(services, timings)
    scripts = ScriptMaker(Corpus.load(), DEFAULT_MIX, 4, random.Random(args.seed))
    decisions: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()

    def new_conversation() -> tuple[str, str, list[tuple[str, str]]]:
        conv_id = str(uuid.uuid4())
        token, digest = services.customer_tokens.issue(conv_id)
        services.conversations.create_conversation(Channel.WEB, digest, conversation_id=conv_id)
        return conv_id, token, scripts.script()

    def customer(n_messages: int, record: bool) -> None:
        conv_id, token, script = new_conversation()
        for i in range(n_messages):
            if not script:
                conv_id, token, script = new_conversation()
            _, text = script.pop(0)
            if record:
                timings.begin()
            t0 = time.perf_counter()
            # What FastAPI runs for POST /api/conversations/{id}/messages, minus HTTP: the dependency that
            # checks the customer token, the handler, and the JSON serialization of its response model.
            conversation = asyncio.run(customer_access(conv_id, services, token))
            turn = post_message(conversation, services, MessageIn(text=text, client_message_id=f"bd-{i}-{t0}"))
            turn.model_dump_json()
            if record:
                timings.end((time.perf_counter() - t0) * 1000)
                with lock:
                    decisions[turn.decision] += 1
            if turn.handed_off:
                script = []

    try:
        customer(args.warmup, record=False)
        timings.recording = True
        busy0, total0 = machine_cpu_times()
        own0 = time.process_time()
        per_worker = [args.messages // args.concurrency + (1 if i < args.messages % args.concurrency else 0)
                      for i in range(args.concurrency)]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(lambda n: customer(n, True), per_worker))
        wall = time.perf_counter() - t0
        busy1, total1 = machine_cpu_times()
        own_cores = (time.process_time() - own0) / wall
        machine_cores = (busy1 - busy0) / (total1 - total0) * (os.cpu_count() or 1) if total1 > total0 else 0.0
    finally:
        services.close()
        shutil.rmtree(folder, ignore_errors=True)

    n = len(timings.turns)
    names = {k for t in timings.turns for k in t}
    mean_total = sum(t["total"] for t in timings.turns) / n
    stages = {}
    for stage in sorted(names, key=lambda k: -sum(t.get(k, 0.0) for t in timings.turns)):
        values_ms = [t.get(stage, 0.0) for t in timings.turns]
        summary = latency_summary(values_ms)
        mean = sum(values_ms) / n
        stages[stage] = {"mean_ms": round(mean, 3), "p50_ms": summary["p50"], "p99_ms": summary["p99"],
                         "calls_per_turn": round(timings.calls[stage] / n, 2) if stage != "total" else 1,
                         "share_of_turn": round(mean / mean_total, 3)}
    for stage, values_ms in timings.off_thread.items():
        summary = latency_summary(values_ms)
        stages[stage + " (per call, other thread)"] = {
            "mean_ms": summary["mean"], "p50_ms": summary["p50"], "p99_ms": summary["p99"],
            "calls_per_turn": round(len(values_ms) / n, 2), "share_of_turn": None}
    return {"services_build_seconds": round(build_s, 2), "turns": n, "wall_seconds": round(wall, 3),
            "turns_per_second": round(n / wall, 1), "decision_mix": dict(decisions.most_common()),
            "stages": stages, "database": "postgresql" if args.database_url else "sqlite",
            "cpu": {"own_cores_used": round(own_cores, 3), "own_cpu_ms_per_turn": round(own_cores * wall * 1000 / n, 2),
                    "other_cores_busy": round(machine_cores - own_cores, 3)}}


def print_report(r: dict[str, Any], concurrency: int) -> None:
    print(f"\n== in-process turn breakdown: {r['turns']} turns, {concurrency} thread(s), {r['database']}, "
          f"{r['turns_per_second']} turns/s ==")
    print(f"{'stage':<52} {'mean ms':>8} {'p50 ms':>8} {'p99 ms':>8} {'calls':>6} {'share':>6}")
    for stage, s in r["stages"].items():
        share = "" if s["share_of_turn"] is None else f"{s['share_of_turn']:.0%}"
        print(f"{stage:<52} {s['mean_ms']:>8.2f} {s['p50_ms']:>8.2f} {s['p99_ms']:>8.2f} "
              f"{s['calls_per_turn']:>6} {share:>6}")
    cpu = r["cpu"]
    print(f"cpu: this process {cpu['own_cores_used']} cores ({cpu['own_cpu_ms_per_turn']} ms per turn), "
          f"other processes {cpu['other_cores_busy']} cores")
    print("(stages nest: 'db: record_turn' includes its SQL; 'encoder: incl. batching queue' includes the model"
          " forward; 'sql: cursor.execute' is the part of all 'db:' stages spent in the driver)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--messages", type=int, default=500)
    p.add_argument("--concurrency", type=int, default=1, help="threads sending turns at once")
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--database-url", help="an existing, empty PostgreSQL database (default: SQLite in a temp dir)")
    p.add_argument("--preload", type=Path, action="append", default=[], metavar="FILE",
                   help="experiment: run this Python file first (repeatable)")
    p.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                   help="settings overrides as environment variables (FRONTDESK_...), like turn_latency.py")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS")
    p.add_argument("--output", type=Path, help="result JSON (default bench/results/turn_breakdown-<timestamp>.json)")
    p.add_argument("--no-write", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    info = machine_info()
    if args.wait_quiet:
        info["quiet_wait"] = wait_for_quiet(timeout=args.wait_quiet, log=lambda m: print(m, file=sys.stderr))
    result = {"benchmark": "turn_breakdown", "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "machine": info, **run(args)}
    print_report(result, args.concurrency)
    if not args.no_write:
        path = write_result("turn_breakdown", result, args.output)
        print(f"\nwrote {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
