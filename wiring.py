"""Build every service once from the settings; the app factory and the CLI both start here."""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import cast

from api.auth import CustomerTokens, StaffAuth
from bot.handover import HandoffPlanner
from bot.pipeline import TurnPipeline
from bot.recovery import RecoveryReport, recover_unprocessed
from bot.replies import ReplyComposer
from cluster.feed import ChangeFeed
from cluster.jobs import process_owner
from domain.enums import Role, Topic, Urgency
from domain.errors import ConfigurationError, SourceFileError, ValidationError
from domain.trainer import VersionStatus
from handoff.desk import AgentDesk
from handoff.notify import ChangeNotifier
from handoff.routing import TeamsConfig, load_teams
from handoff.sla import SlaTarget
from knowledge_index.approximate_index import AutoIndexConfig
from knowledge_index.batching import BatchingEncoder
from knowledge_index.encoder import Encoder, load_encoder
from knowledge_index.fusion import RetrievalWeights
from knowledge_index.importer import import_folder
from knowledge_index.knowledge_base import KnowledgeBase
from knowledge_index.vector_index import new_index
from nlu.fitting import FitConfig
from nlu.intent import IntentModel, ModelFiles, latest_model
from nlu.model_factory import IntentModelFactory
from nlu.rasa_backend import RasaIntentClassifier
from nlu.rasa_domain import load_responses
from nlu.retrain import STARTUP, TrainerLoop
from nlu.serving import ServingModel
from nlu.training import load_or_train
from nlu.urgency_model import build_urgency_scorer
from settings import Settings
from storage.article_usage import ArticleUsageRepository
from storage.articles import SqlArticleRepository
from storage.canned import CannedStore
from storage.changes import ChangeLog
from storage.conversations import ConversationRepository
from storage.customers import CustomerDirectory
from storage.db import Database
from storage.desk import DeskStore
from storage.events import EventLog
from storage.handoffs import HandoffRepository
from storage.kpis import KpiRepository
from storage.leases import JobLeases
from storage.model_files import SqlModelFiles
from storage.service_secrets import ServiceSecrets
from storage.staff import StaffRepository
from storage.trainer import TrainerStore

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class Services:
    """Everything a request handler or background job may need, built once per process."""

    settings: Settings
    owner: str  # this process's name in leases (host:pid:random)
    db: Database
    changes: ChangeLog
    feed: ChangeFeed
    leases: JobLeases
    notifier: ChangeNotifier
    conversations: ConversationRepository
    handoffs: HandoffRepository
    staff: StaffRepository
    auth: StaffAuth
    customer_tokens: CustomerTokens
    articles: SqlArticleRepository
    encoder: BatchingEncoder
    knowledge: KnowledgeBase
    serving: ServingModel
    teams: TeamsConfig
    composer: ReplyComposer
    pipeline: TurnPipeline
    desk: AgentDesk
    desk_store: DeskStore
    canned: CannedStore
    events: EventLog
    model_files: ModelFiles
    trainer_store: TrainerStore
    trainer: TrainerLoop
    kpis: KpiRepository
    article_usage: ArticleUsageRepository  # how the bot used each article, for editors
    customers: CustomerDirectory  # profiles across channels, for staff

    def recover(self) -> RecoveryReport:
        """Run the turns of messages whose process died before answering them (one batch)."""
        return recover_unprocessed(self.pipeline, self.conversations)

    def start(self) -> None:
        """Start following the other processes' changes (the change feed's thread)."""
        self.feed.start()

    def close(self) -> None:
        """Stop workers and close connections."""
        self.feed.stop()
        self.encoder.close()
        if self.serving.rasa is not None:
            self.serving.rasa.close()
        self.db.dispose()


def build_database(settings: Settings) -> Database:
    """The database, migrated to the newest schema (processes starting together take turns)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.db_url, echo=settings.database.echo, pool_size=settings.database.pool_size,
                  max_overflow=settings.database.max_overflow)
    db.migrate()
    return db


def build_encoder(settings: Settings, threads: int | None = None) -> Encoder:
    """The configured sentence encoder (loaded once; a few seconds for MiniLM)."""
    enc = settings.encoder
    return load_encoder(enc.model, device=enc.device, threads=threads or enc.threads, hash_dim=enc.hash_dim,
                        backend=enc.backend, cache_dir=settings.model_dir / "onnx", quantize=enc.quantize,
                        allow_spinning=enc.allow_spinning)


def retrieval_weights(settings: Settings) -> RetrievalWeights:
    """How the knowledge base scores articles (settings.knowledge)."""
    return RetrievalWeights(title=settings.knowledge.title_weight, lexical=settings.knowledge.lexical_weight)


def build_knowledge_base(settings: Settings, db: Database, encoder: Encoder) -> KnowledgeBase:
    """The knowledge base over the database's articles (its indexes are empty until ``load``)."""
    k = settings.knowledge
    auto = AutoIndexConfig(threshold=k.approximate_above, m=k.hnsw_m, ef_search=k.hnsw_ef_search,
                           build_threads=k.hnsw_build_threads)
    return KnowledgeBase(SqlArticleRepository(db), encoder, k.index_kind, k.chunk_max_words,
                         retrieval_weights(settings), make_index=lambda dim: new_index(k.index_kind, dim, auto))


def intent_fit_config(settings: Settings) -> FitConfig:
    """How intent models are fitted (settings.nlu)."""
    nlu = settings.nlu
    return FitConfig(method=nlu.method, folds=nlu.validation_folds, target_false_oos=nlu.target_false_oos_rate,
                     max_false_oos=nlu.max_false_oos_rate, oos_threshold=nlu.oos_threshold_override,
                     ambiguity_target_accuracy=nlu.ambiguity_target_accuracy)


def build_trainer(settings: Settings, store: TrainerStore, factory: IntentModelFactory, encoder: Encoder,
                  serving: ServingModel) -> TrainerLoop:
    """The trainer loop around the model this process serves."""
    t = settings.trainer
    return TrainerLoop(store, factory, encoder, Path(settings.nlu.training_data),
                       active_model=lambda: serving.model,
                       on_activate=lambda model: serving.serve(cast(IntentModel, model)),
                       low_confidence=t.low_confidence, ambiguous_margin=t.ambiguous_margin,
                       heldout_fraction=t.heldout_fraction, keep_versions=t.keep_versions,
                       cluster_threshold=t.cluster_similarity)


def build_services(settings: Settings, encoder: Encoder | None = None, progress: bool = False) -> Services:
    """Connect, migrate, prepare the shared state once (seed, vectors, startup model), load this process's view.

    Several processes may start at once on one database: what writes shared state runs under one lock
    (``Database.exclusive("startup")``), so the first process seeds and trains and the others load its results.

    Args:
        settings: the one settings object.
        encoder: an already loaded encoder to share (tests load MiniLM once per session).
        progress: show progress bars (CLI).

    Raises:
        ConfigurationError / SourceFileError: a configured file or model cannot be used.
    """
    db = build_database(settings)
    changes = ChangeLog(db)
    notifier = ChangeNotifier()
    # Created before anything is loaded: a change committed while this process loads is applied afterwards.
    feed = ChangeFeed(db, changes, poll_seconds=settings.cluster.poll_seconds,
                      verify_seconds=settings.cluster.verify_seconds, on_events=notifier.notify)
    inner = encoder or build_encoder(settings)
    batching = BatchingEncoder(inner, settings.encoder.max_batch_size, settings.encoder.max_batch_wait_ms)
    try:
        teams = load_teams(Path(settings.nlu.teams_file))
        responses = load_responses(Path(settings.nlu.domain_file))
        knowledge = build_knowledge_base(settings, db, inner)
        articles = knowledge.repo
        assert isinstance(articles, SqlArticleRepository)
        model_files = SqlModelFiles(db)
        trainer_store = TrainerStore(db)
        factory = IntentModelFactory(inner.name, model_files, intent_fit_config(settings))
        staff = StaffRepository(db)
        auth = StaffAuth(staff, settings.auth.token_ttl_hours)
        with db.exclusive("startup"):
            _seed(settings, knowledge, progress)
            encoded = knowledge.ensure_vectors()
            if encoded:
                log.info("encoded %d chunks that had no vectors from %s", encoded, inner.name)
            _upload_model_files(settings.model_dir, model_files)
            startup = _intent_model(settings, inner, model_files, progress)
            model = _serving_model(trainer_store, factory, startup)
            _bootstrap_admin(settings, staff, auth)
            token_secret = settings.chat.token_secret
            customer_tokens = CustomerTokens(token_secret.get_secret_value() if token_secret
                                             else ServiceSecrets(db).get_or_create("customer_token_key"))
        loaded = knowledge.load()
        log.info("knowledge base: %d articles, %d chunks", loaded.articles, loaded.chunks)
        unknown = sorted(set(model.intents) - set(teams.routes))
        if unknown:
            log.warning("intents without a route in %s (they go to %s): %s", settings.nlu.teams_file,
                        teams.default_team, ", ".join(unknown))
    except SourceFileError as e:
        batching.close()
        db.dispose()
        raise ConfigurationError(str(e)) from e
    except Exception:
        batching.close()
        db.dispose()
        raise
    serving = ServingModel(model, trainer_store, factory.load, rasa=_rasa_backend(settings, model))
    conversations = ConversationRepository(db, inbound_lease=timedelta(seconds=settings.chat.recover_after_seconds))
    handoffs = HandoffRepository(db)
    composer = ReplyComposer(responses, settings.knowledge.article_url_template,
                             {key: team.name for key, team in teams.teams.items()})
    sla = {Urgency(level): SlaTarget(t.first_response_minutes, t.resolution_minutes)
           for level, t in settings.handoff.sla.items()}
    desk_store = DeskStore(db)
    canned = CannedStore(db)
    desk = AgentDesk(
        desk_store, handoffs, conversations, canned, knowledge, teams, sla, notifier,
        settings.knowledge.article_url_template, serving,
        csat_prompt=settings.handoff.csat_prompt, default_wait_minutes=settings.handoff.default_wait_minutes,
        wait_history_days=settings.handoff.wait_history_days, presence_seconds=settings.handoff.presence_seconds,
    )
    planner = HandoffPlanner(conversations, teams, sla, composer, waiting=desk)
    pipeline = TurnPipeline(
        store=conversations, encoder=batching, classifier=serving,
        urgency=build_urgency_scorer(teams.urgency_priors(), inner, settings.urgency), retriever=knowledge,
        router=teams, composer=composer, policy=settings.policy, planner=planner, csat=desk_store,
        search_k=settings.knowledge.search_k,
    )
    trainer = build_trainer(settings, trainer_store, factory, batching, serving)
    feed.subscribe(Topic.ARTICLES, knowledge.refresh)
    feed.subscribe(Topic.MODEL, serving.refresh)
    return Services(
        settings=settings, owner=process_owner(), db=db, changes=changes, feed=feed, leases=JobLeases(db),
        notifier=notifier, conversations=conversations, handoffs=handoffs, staff=staff, auth=auth,
        customer_tokens=customer_tokens,
        articles=articles, encoder=batching, knowledge=knowledge, serving=serving, teams=teams, composer=composer,
        pipeline=pipeline, desk=desk, desk_store=desk_store, canned=canned, events=EventLog(db),
        model_files=model_files, trainer_store=trainer_store, trainer=trainer, kpis=KpiRepository(db),
        article_usage=ArticleUsageRepository(db), customers=CustomerDirectory(db),
    )


def _seed(settings: Settings, knowledge: KnowledgeBase, progress: bool) -> None:
    """Import ``knowledge.seed_dir`` into an empty knowledge base (the demo by default)."""
    seed = settings.knowledge.seed_dir
    if not seed or knowledge.repo.count_articles():
        return
    report = import_folder(knowledge, Path(seed), progress=progress)
    log.info("seeded the knowledge base from %s: %s", seed, report.summary())
    for problem in report.problems:
        log.warning("article not imported: %s", problem)


def _upload_model_files(model_dir: Path, files: ModelFiles) -> None:
    """Model files an earlier version kept in the data folder move to the database (once)."""
    if not model_dir.is_dir():
        return
    stored = set(files.versions())
    for path in sorted(model_dir.glob("*.npz")):
        if path.stem not in stored and IntentModel.load(model_dir, path.stem) is not None:
            files.put(path.stem, path.read_bytes())
            log.info("moved intent model %s from %s into the database", path.stem, model_dir)


def _intent_model(settings: Settings, encoder: Encoder, files: ModelFiles, progress: bool) -> IntentModel:
    """Train or load the intent model; with broken training data, keep serving the last good model."""
    try:
        return load_or_train(Path(settings.nlu.training_data), encoder, files, intent_fit_config(settings),
                             settings.nlu.min_examples_per_intent, progress=progress)
    except (SourceFileError, ValidationError) as e:
        fallback = latest_model(files)
        if fallback is None:
            raise ConfigurationError(f"cannot train the intent model: {e}") from e
        log.error("training data refused (%s); serving the previous intent model %s", e, fallback.version)
        return fallback


def _serving_model(store: TrainerStore, factory: IntentModelFactory, startup: IntentModel) -> IntentModel:
    """The model to serve: the one trainers activated, unless the training file changed since.

    The model built at startup from the configured training data is registered as a version; it becomes
    active when no version is active yet, when the active version's file is gone, or when the training
    data changed (the file is the source of truth for a deployment).
    """
    store.register_version(startup.version, factory.method, VersionStatus.CANDIDATE, 0, {}, STARTUP)
    active = store.active_version()
    if active is not None and active.version != startup.version and active.created_by != STARTUP:
        loaded = factory.load(active.version)
        if loaded is not None:
            return loaded
    if active is None or active.version != startup.version:
        store.activate(startup.version, STARTUP)
    return startup


def _rasa_backend(settings: Settings, builtin: IntentModel) -> RasaIntentClassifier | None:
    """The Rasa server in front of the built-in model when ``rasa.enabled`` (no request until the first message)."""
    if not settings.rasa.enabled:
        return None
    log.info("intents come from Rasa at %s (timeout %.2f s); the built-in model %s is the fallback",
             settings.rasa.url, settings.rasa.timeout_seconds, builtin.version)
    return RasaIntentClassifier.connect(
        settings.rasa.url, builtin, timeout_seconds=settings.rasa.timeout_seconds,
        retry_after_seconds=settings.rasa.retry_after_seconds, min_confidence=settings.nlu.out_of_scope_threshold)


def _bootstrap_admin(settings: Settings, staff: StaffRepository, auth: StaffAuth) -> None:
    """With no staff user at all, create ``admin`` so someone can log in and add the others.

    The password is the configured one, or a random one written to ``<data_dir>/admin-password.txt``
    (mode 0600); it is never logged.
    """
    if staff.count_users():
        return
    secret = settings.auth.bootstrap_admin_password
    password = secret.get_secret_value() if secret else secrets.token_urlsafe(12)
    auth.create_user("admin", password, [r.value for r in Role], "Administrator")
    if secret is None:
        path = settings.data_dir / "admin-password.txt"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(password + "\n")
        log.info("created staff user 'admin'; its password is in %s", path)
    else:
        log.info("created staff user 'admin' with the configured bootstrap password")
