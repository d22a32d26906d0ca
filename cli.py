"""The ``frontdesk`` command line: serve, import articles, train, evaluate, manage staff users, search."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from domain.errors import FrontdeskError
from server_logging import configure_logging
from settings import Settings


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    parser = _parser()
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_level)
    try:
        return int(args.func(settings, args) or 0)
    except FrontdeskError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="frontdesk", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="command")

    p = sub.add_parser("serve", help="run the HTTP service")
    p.add_argument("--host", help="bind address (default from settings: 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default from settings: 8000)")
    p.add_argument("--workers", type=int, help="server processes on this host (default from settings: 1)")
    p.set_defaults(func=_serve)

    p = sub.add_parser("retrain-job", help=argparse.SUPPRESS)  # started by a server process, one per retrain
    p.add_argument("job_id", type=int)
    p.add_argument("--settings-file", type=Path, required=True)
    p.add_argument("--parent-pid", type=int, required=True)
    p.set_defaults(func=_retrain_job)

    p = sub.add_parser("init", help="migrate the database, seed the demo knowledge base, index and train")
    p.set_defaults(func=_init)

    p = sub.add_parser("import-articles", help="import a folder of markdown articles")
    p.add_argument("folder", type=Path)
    p.add_argument("--prune", action="store_true", help="delete articles that are not in the folder")
    p.set_defaults(func=_import)

    p = sub.add_parser("train", help="train the intent classifier from the configured nlu.yml")
    p.set_defaults(func=_train)

    p = sub.add_parser("evaluate", help="train intent methods on a labelled set's train split, score its test split")
    p.add_argument("data", type=Path, help="JSONL (text, label, split; label 'oos' = out of scope) or a Rasa nlu.yml")
    p.add_argument("--test", type=Path, action="append", default=[],
                   help="labelled JSONL or nlu.yml used as the test set instead of the data's test split (repeatable)")
    p.add_argument("--oos-test", type=Path, action="append", default=[],
                   help="JSONL of out-of-scope messages (only 'text' needed) added to the test set (repeatable)")
    p.add_argument("--method", action="append", choices=["linear", "knn", "ensemble"],
                   help="intent head to evaluate (repeat to compare; default: nlu.method); the first one is plotted")
    p.add_argument("--out", type=Path, help="report folder (default: <data_dir>/reports/<data>-<time>)")
    p.add_argument("--cache-dir", type=Path, default=Path("data-cache"), help="encoded vectors (default data-cache)")
    p.add_argument("--no-valid-split", action="store_true",
                   help="train on a 'valid' split too and calibrate on folds of train instead")
    p.add_argument("--test-fraction", type=float, default=0.2, help="held out as test when there is no test split")
    p.add_argument("--latency-samples", type=int, default=200, help="test messages timed one by one (default 200)")
    p.add_argument("--seed", type=int, default=13)
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("train-urgency", help="train the urgency model from labelled tickets (JSONL: text, priority)")
    p.add_argument("tickets", type=Path, help="one JSON object a line with 'text' and 'priority' (low/medium/high)")
    p.add_argument("--out", type=Path, help="model file (default: urgency.model_path or <data_dir>/models/urgency.npz)")
    p.add_argument("--min-high-recall", type=float, default=0.9,
                   help="thresholds must reach this recall of high tickets on validation (default 0.9)")
    p.add_argument("--seed", type=int, default=13, help="seed of the train/validation split")
    p.set_defaults(func=_train_urgency)

    p = sub.add_parser("search", help="search the knowledge base")
    p.add_argument("query")
    p.add_argument("-k", type=int, default=5)
    p.set_defaults(func=_search)

    p = sub.add_parser("telegram-webhook", help="point the Telegram bot's webhook at this service (setWebhook)")
    p.add_argument("--url", help="public webhook URL (default: server.public_base_url + /telegram/webhook)")
    p.set_defaults(func=_telegram_webhook)

    p = sub.add_parser("add-user", help="add a staff user (password read from the terminal or stdin)")
    p.add_argument("username")
    p.add_argument("--role", action="append", required=True,
                   choices=["agent", "supervisor", "editor", "trainer", "admin"], help="repeat for several")
    p.add_argument("--name", help="display name")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.set_defaults(func=_add_user)
    return parser


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    workers = args.workers if args.workers is not None else settings.server.workers
    if workers < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return 2
    host = args.host or settings.server.host
    port = args.port if args.port is not None else settings.server.port
    # Live event streams never finish on their own; give them a few seconds, then close.
    if workers == 1:
        from server import create_app

        uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level.lower(),
                    timeout_graceful_shutdown=5)
        return 0
    # Each worker process builds the app from the same environment (uvicorn's supervisor restarts dead ones).
    uvicorn.run("server:create_app", factory=True, workers=workers, host=host, port=port,
                log_level=settings.log_level.lower(), timeout_graceful_shutdown=5)
    return 0


def _retrain_job(_: Settings, args: argparse.Namespace) -> int:
    """Run one retrain job that a server process claimed (it watches this process and renews the job's lease)."""
    import json

    from threadpoolctl import threadpool_limits

    from nlu.model_factory import IntentModelFactory
    from nlu.retrain_runner import die_with_parent
    from nlu.serving import ServingModel
    from storage.model_files import SqlModelFiles
    from storage.trainer import TrainerStore
    from wiring import build_database, build_encoder, build_trainer, intent_fit_config

    die_with_parent(args.parent_pid)
    settings = Settings(_env_file=None, **json.loads(args.settings_file.read_text()))
    db = build_database(settings)
    try:
        encoder = build_encoder(settings, threads=1)  # one core at most, at the lower priority it runs with
        store = TrainerStore(db)
        factory = IntentModelFactory(encoder.name, SqlModelFiles(db), intent_fit_config(settings))
        active = store.active_version_name()
        model = factory.load(active) if active else None
        if model is None:
            store.update_job(args.job_id, status="failed", step="failed", stage="failed",
                             error="no active intent model to compare with")
            return 1
        serving = ServingModel(model, store, factory.load)
        with threadpool_limits(limits=1):
            build_trainer(settings, store, factory, encoder, serving).run_job(args.job_id)
    finally:
        db.dispose()
    return 0


def _telegram_webhook(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    from connectors.delivery import DeliveryError
    from connectors.telegram import TelegramConnector

    if not settings.telegram.enabled:
        print("error: Telegram is not enabled (set FRONTDESK_TELEGRAM__ENABLED=true and its token and secret)",
              file=sys.stderr)
        return 2
    url = args.url or settings.server.public_base_url.rstrip("/") + "/telegram/webhook"
    connector = TelegramConnector(settings)

    async def register() -> None:
        try:
            await connector.register_webhook(url)
        finally:
            await connector.stop()

    try:
        asyncio.run(register())
    except DeliveryError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"Telegram will send private messages to {url} (with the configured secret token)")
    return 0


def _init(settings: Settings, _: argparse.Namespace) -> int:
    from wiring import build_services

    services = build_services(settings, progress=True)
    try:
        print(f"database: {services.db.dialect}; articles: {services.articles.count_articles()}; "
              f"chunks indexed: {services.knowledge.chunk_count()}; intent model: {services.serving.version} "
              f"({len(services.serving.intents)} intents)")
    finally:
        services.close()
    return 0


def _import(settings: Settings, args: argparse.Namespace) -> int:
    from knowledge_index.importer import import_folder
    from wiring import build_database, build_encoder, build_knowledge_base

    db = build_database(settings)
    try:
        # Straight into the database: a running service (every process of it) picks the changes up.
        kb = build_knowledge_base(settings, db, build_encoder(settings))
        report = import_folder(kb, args.folder, prune=args.prune, progress=True)
    finally:
        db.dispose()
    for problem in report.problems:
        print(f"skipped {problem}", file=sys.stderr)
    print(report.summary())
    return 1 if report.problems else 0


def _train(settings: Settings, _: argparse.Namespace) -> int:
    from nlu.training import load_or_train
    from storage.model_files import SqlModelFiles
    from wiring import build_database, build_encoder, intent_fit_config

    db = build_database(settings)
    try:
        with db.exclusive("startup"):
            model = load_or_train(Path(settings.nlu.training_data), build_encoder(settings), SqlModelFiles(db),
                                  intent_fit_config(settings), settings.nlu.min_examples_per_intent, progress=True)
    finally:
        db.dispose()
    print(f"intent model {model.version}: {len(model.intents)} intents, {model.method} head, "
          f"out-of-scope threshold {model.oos.threshold:.3f} ({model.oos.rule})")
    return 0


def _evaluate(settings: Settings, args: argparse.Namespace) -> int:
    import datetime as dt

    from nlu.eval_report import format_summary, write_report
    from nlu.evaluation import EvaluationPlan, evaluate
    from wiring import build_encoder, intent_fit_config

    methods = tuple(args.method or [settings.nlu.method])
    plan = EvaluationPlan(args.data, tuple(args.test), tuple(args.oos_test), methods,
                          use_valid_split=not args.no_valid_split, test_fraction=args.test_fraction,
                          latency_samples=args.latency_samples, seed=args.seed)
    report, gold, predicted = evaluate(plan, build_encoder(settings), intent_fit_config(settings), args.cache_dir,
                                       settings.nlu.min_examples_per_intent, progress=True)
    out = args.out or settings.data_dir / "reports" / f"{args.data.stem}-{dt.datetime.now():%Y%m%dT%H%M%S}"
    paths = write_report(report, gold, predicted, out)
    print(format_summary(report))
    print("report: " + ", ".join(str(p) for p in paths))
    return 0


def _train_urgency(settings: Settings, args: argparse.Namespace) -> int:
    from nlu.urgency_model import build_rules
    from nlu.urgency_training import train_from_jsonl
    from wiring import build_encoder

    encoder = build_encoder(settings)
    out = args.out or Path(settings.urgency.model_path or settings.model_dir / "urgency.npz")
    report = train_from_jsonl(args.tickets, encoder, build_rules({}, encoder, settings.urgency), out,
                              args.min_high_recall, args.seed, progress=True)
    print(report.summary())
    print(f"saved to {out}; use it with FRONTDESK_URGENCY__MODEL_PATH={out}")
    return 0


def _search(settings: Settings, args: argparse.Namespace) -> int:
    from wiring import build_database, build_encoder, build_knowledge_base

    db = build_database(settings)
    try:
        kb = build_knowledge_base(settings, db, build_encoder(settings))
        kb.load()
        for hit in kb.search_text(args.query, args.k):
            print(f"{hit.score:.3f}  {hit.article_id}  ({hit.heading})")
    finally:
        db.dispose()
    return 0


def _add_user(settings: Settings, args: argparse.Namespace) -> int:
    from api.auth import StaffAuth
    from storage.staff import StaffRepository
    from wiring import build_database

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.username}: ")
    db = build_database(settings)
    try:
        user = StaffAuth(StaffRepository(db), settings.auth.token_ttl_hours).create_user(
            args.username, password, args.role, args.name)
    finally:
        db.dispose()
    print(f"added {user.username} with roles {', '.join(sorted(user.roles))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
