"""Summarize a py-spy raw (collapsed-stack) profile of the server: samples per component and per thread."""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
from pathlib import Path
from typing import Any

# (component, pattern on one frame); a sample goes to the first component found from the leaf upwards.
RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("encoder (onnxruntime or torch, tokenizers)",
     re.compile(r"onnxruntime|onnx_encoder\.py|torch/|transformers/|sentence_transformers/|tokenizers|"
                r"knowledge_index/encoder\.py")),
    ("vector search (faiss)", re.compile(r"faiss/|knowledge_index/vector_index\.py")),
    ("database (SQLAlchemy + driver)", re.compile(r"sqlalchemy/|sqlite3|psycopg|storage/")),
    ("JSON / pydantic serialization", re.compile(r"pydantic|/json/|fastapi/encoders\.py|fastapi/_compat")),
    ("logging", re.compile(r"/logging/")),
    ("HTTP + ASGI (uvicorn, starlette, fastapi, anyio)",
     re.compile(r"uvicorn/|h11/|httptools|starlette/|fastapi/|anyio/|asyncio/|uvloop|concurrent/futures")),
    ("bot logic (pipeline, policy, intent, urgency, handoff)",
     re.compile(r"bot/|nlu/|handoff/|domain/|knowledge_index/|connectors/|api/")),
    ("threading / queues", re.compile(r"threading\.py|queue\.py")),
)
OTHER = "other"
_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
IDLE = "idle: pool thread waiting for a request"
_WAIT_LEAF = re.compile(r"^(Condition\.wait|Queue\.get|SimpleQueue\.get|Event\.wait|Future\.result|"
                        r"Thread\._wait_for_tstate_lock|Lock\.acquire)")
# Frames whose own line is a ``with self._lock:`` or a blocking hand-off rather than work.
WAITS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (IDLE, re.compile(r"WorkerThread\.run.*;Queue\.get \(queue\.py")),
    ("wait: for the encoder micro-batch (Future.result)", re.compile(r"BatchingEncoder\.encode[^;]*;Future\.result")),
    ("wait: encoder-batcher queue (collecting a batch)", re.compile(r"BatchingEncoder\._run[^;]*;(Simple)?Queue\.get")),
)


def component(frames: list[str]) -> str:
    text = ";".join(frames)
    if frames and _WAIT_LEAF.match(frames[-1]):
        for name, pattern in WAITS:
            if pattern.search(text):
                return name
        return "wait: other lock / condition"
    if frames and frames[-1].startswith("FaissIndex.search ") :
        return "wait: vector-index lock (FaissIndex.search own line)"
    if frames and frames[-1].startswith("Runner.run (asyncio/runners.py"):
        return "event loop in C (uvloop: sockets, HTTP parsing; may include idle polling)"
    for frame in reversed(frames):
        for name, pattern in RULES:
            if pattern.search(frame):
                return name
    return OTHER


def thread_role(frames: list[str]) -> str:
    """What a thread does, from the outermost frames of one of its stacks."""
    text = ";".join(frames)
    if "BatchingEncoder._run" in text or "_run (knowledge_index/batching.py" in text:
        return "encoder-batcher thread"
    if "WorkerThread" in text or "worker (concurrent/futures/thread.py" in text:
        return "request worker threads (anyio pool)"
    if "uvicorn" in text or "asyncio" in text or "uvloop" in text:
        return "event loop thread (uvicorn)"
    return "other threads"


def summarize(path: Path) -> dict[str, Any]:
    by_component: collections.Counter[str] = collections.Counter()
    by_role: collections.Counter[str] = collections.Counter()
    by_role_component: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    leaf_functions: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        m = _LINE.match(line.strip())
        if not m:
            continue
        count = int(m.group("count"))
        frames = m.group("stack").split(";")
        if frames and frames[0].startswith(("thread", "process", '"thread')):
            frames = frames[1:] if not frames[0].startswith("process") else frames[2:]
        comp = component(frames)
        role = thread_role(frames)
        by_component[comp] += count
        by_role[role] += count
        by_role_component[role][comp] += count
        leaf_functions[frames[-1] if frames else "?"] += count
        total += count

    busy = total - by_component.get(IDLE, 0)

    def shares(counter: collections.Counter[str]) -> dict[str, dict[str, float | int]]:
        return {k: {"samples": v, "share": round(v / total, 4),
                    "share_of_non_idle": round(v / busy, 4) if k != IDLE and busy else None}
                for k, v in counter.most_common()}

    return {"file": str(path), "samples": total, "by_component": shares(by_component),
            "by_thread_role": shares(by_role),
            "by_thread_role_and_component": {r: dict(c.most_common()) for r, c in by_role_component.items()},
            "top_leaf_frames": [{"frame": f, "samples": n, "share": round(n / total, 4)}
                                for f, n in leaf_functions.most_common(25)]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("profile", type=Path, help="py-spy record --format raw output")
    p.add_argument("--json", type=Path, help="also write the summary as JSON")
    p.add_argument("--seconds", type=float, help="how long the profile ran (for the GIL-busy share with --gil)")
    p.add_argument("--rate", type=float, default=250.0, help="py-spy sampling rate in Hz")
    args = p.parse_args(argv)
    s = summarize(args.profile)
    if args.seconds:
        s["busy_share_of_wall_time"] = round(s["samples"] / (args.seconds * args.rate), 3)
        print(f"samples / (seconds x rate) = {s['busy_share_of_wall_time']:.1%} (with py-spy --gil: the share of "
              "wall time some thread held the GIL)")
    print(f"{s['samples']} samples of threads py-spy saw as active (its idle detection is approximate: pool threads"
          " blocked on their work queue still show up and are listed as idle; torch's native OpenMP threads are not"
          " Python threads and are never sampled)\n")
    print(f"{'component':<76} {'share':>6} {'non-idle':>8}")
    for name, v in s["by_component"].items():
        non_idle = "" if v["share_of_non_idle"] is None else f"{v['share_of_non_idle']:.1%}"
        print(f"{name:<76} {v['share']:>6.1%} {non_idle:>8}")
    print(f"\n{'thread':<58} {'share':>6}")
    for name, v in s["by_thread_role"].items():
        print(f"{name:<58} {v['share']:>6.1%}")
    print("\ntop leaf frames")
    for row in s["top_leaf_frames"][:15]:
        print(f"  {row['share']:>6.1%}  {row['frame']}")
    if args.json:
        args.json.write_text(json.dumps(s, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
