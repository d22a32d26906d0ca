"""Build every service once from the settings; the app factory and the CLI both start here."""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from api.auth import StaffAuth
from bot.handover import HandoffPlanner
from bot.pipeline import TurnPipeline
from bot.recovery import RecoveryReport, recover_unprocessed
from bot.replies import ReplyComposer
from connectors.delivery import ChannelSender
from domain.enums import Channel, Role, Urgency
from domain.errors import ConfigurationError, SourceFileError, ValidationError
from handoff.desk import AgentDesk
from handoff.notify import ChangeNotifier
from handoff.routing import TeamsConfig, load_teams
from handoff.sla import SlaTarget
from knowledge_index.batching import BatchingEncoder
from knowledge_index.encoder import Encoder, load_encoder
from knowledge_index.fusion import RetrievalWeights
from knowledge_index.importer import import_folder
from knowledge_index.knowledge_base import KnowledgeBase
from nlu.fitting import FitConfig
from nlu.intent import IntentModel
from nlu.model_factory import IntentModelFactory
from nlu.rasa_backend import RasaIntentClassifier
from nlu.rasa_domain import load_responses
from nlu.retrain import TrainerLoop
from nlu.training import load_or_train
from nlu.urgency_model import build_urgency_scorer
from settings import Settings
from storage.article_usage import ArticleUsageRepository
from storage.articles import SqlArticleRepository
from storage.canned import CannedStore
from storage.conversations import ConversationRepository
from storage.customers import CustomerDirectory
from storage.db import Database
from storage.desk import DeskStore
from storage.events import EventLog
from storage.handoffs import HandoffRepository
from storage.kpis import KpiRepository
from storage.staff import StaffRepository
from storage.trainer import TrainerStore

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Everything a request handler may need, built once per process."""

    settings: Settings
    db: Database
    conversations: ConversationRepository
    handoffs: HandoffRepository
    staff: StaffRepository
    auth: StaffAuth
    articles: SqlArticleRepository
    encoder: BatchingEncoder
    knowledge: KnowledgeBase
    classifier: IntentModel
    teams: TeamsConfig
    composer: ReplyComposer
    pipeline: TurnPipeline
    desk: AgentDesk
    desk_store: DeskStore
    canned: CannedStore
    events: EventLog
    notifier: ChangeNotifier
    trainer_store: TrainerStore | None = None
    trainer: TrainerLoop | None = None
    # Platform senders for outbound delivery (Slack, Telegram), registered by the connectors that are enabled.
    senders: dict[Channel, ChannelSender] = field(default_factory=dict)
    # The optional Rasa backend wrapping ``classifier`` in the pipeline (settings.rasa.enabled).
    rasa: RasaIntentClassifier | None = None
    kpis: KpiRepository = field(init=False)  # operators' KPIs, read from the same database
    article_usage: ArticleUsageRepository = field(init=False)  # how the bot used each article, for editors
    customers: CustomerDirectory = field(init=False)  # profiles across channels, for staff

    def __post_init__(self) -> None:
        self.kpis = KpiRepository(self.db)
        self.article_usage = ArticleUsageRepository(self.db)
        self.customers = CustomerDirectory(self.db)

    def recover(self) -> RecoveryReport:
        """Process messages a crash left unprocessed."""
        return recover_unprocessed(self.pipeline, self.conversations, self.settings.chat.recover_after_seconds)

    def close(self) -> None:
        """Stop workers and close connections."""
        self.encoder.close()
        if self.rasa is not None:
            self.rasa.close()
        self.db.dispose()


def build_database(settings: Settings) -> Database:
    """The database, migrated to the newest schema."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.db_url, echo=settings.database.echo)
    db.migrate()
    return db


def build_encoder(settings: Settings) -> Encoder:
    """The configured sentence encoder (loaded once; a few seconds for MiniLM)."""
    enc = settings.encoder
    return load_encoder(enc.model, device=enc.device, threads=enc.threads, hash_dim=enc.hash_dim,
                        backend=enc.backend, cache_dir=settings.model_dir / "onnx", quantize=enc.quantize,
                        allow_spinning=enc.allow_spinning)


def retrieval_weights(settings: Settings) -> RetrievalWeights:
    """How the knowledge base scores articles (settings.knowledge)."""
    return RetrievalWeights(title=settings.knowledge.title_weight, lexical=settings.knowledge.lexical_weight)


def build_services(settings: Settings, encoder: Encoder | None = None, progress: bool = False) -> Services:
    """Connect, migrate, load models, seed the demo knowledge base if empty, sync the index, train.

    Args:
        settings: the one settings object.
        encoder: an already loaded encoder to share (tests load MiniLM once per session).
        progress: show progress bars (CLI).

    Raises:
        ConfigurationError / SourceFileError: a configured file or model cannot be used.
    """
    db = build_database(settings)
    inner = encoder or build_encoder(settings)
    batching = BatchingEncoder(inner, settings.encoder.max_batch_size, settings.encoder.max_batch_wait_ms)
    try:
        teams = load_teams(Path(settings.nlu.teams_file))
        responses = load_responses(Path(settings.nlu.domain_file))
        articles = SqlArticleRepository(db)
        knowledge = KnowledgeBase(articles, inner, settings.index_dir, settings.knowledge.index_kind,
                                  settings.knowledge.chunk_max_words, retrieval_weights(settings))
        seed = settings.knowledge.seed_dir
        if seed and articles.count_articles() == 0:
            report = import_folder(knowledge, Path(seed), progress=progress)
            log.info("seeded the knowledge base from %s: %s", seed, report.summary())
            for problem in report.problems:
                log.warning("article not imported: %s", problem)
        sync = knowledge.sync()
        log.info("vector index: %d chunks (%d encoded, %d removed)", sync.total, sync.encoded, sync.removed)
        classifier = _intent_model(settings, inner, progress)
        unknown = sorted(set(classifier.intents) - set(teams.routes))
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
    conversations = ConversationRepository(db)
    handoffs = HandoffRepository(db)
    staff = StaffRepository(db)
    auth = StaffAuth(staff, settings.auth.token_ttl_hours)
    composer = ReplyComposer(responses, settings.knowledge.article_url_template,
                             {key: team.name for key, team in teams.teams.items()})
    sla = {Urgency(level): SlaTarget(t.first_response_minutes, t.resolution_minutes)
           for level, t in settings.handoff.sla.items()}
    notifier = ChangeNotifier()
    desk_store = DeskStore(db)
    canned = CannedStore(db)
    desk = AgentDesk(
        desk_store, handoffs, conversations, canned, knowledge, teams, sla, notifier,
        settings.knowledge.article_url_template, frozenset(classifier.intents),
        csat_prompt=settings.handoff.csat_prompt, default_wait_minutes=settings.handoff.default_wait_minutes,
        wait_history_days=settings.handoff.wait_history_days, presence_seconds=settings.handoff.presence_seconds,
    )
    planner = HandoffPlanner(conversations, teams, sla, composer, waiting=desk)
    pipeline = TurnPipeline(
        store=conversations, encoder=batching, classifier=classifier,
        urgency=build_urgency_scorer(teams.urgency_priors(), inner, settings.urgency), retriever=knowledge,
        router=teams,
        composer=composer, policy=settings.policy, planner=planner, csat=desk_store,
        search_k=settings.knowledge.search_k,
    )
    trainer_store = TrainerStore(db)
    factory = IntentModelFactory(inner.name, settings.model_dir, intent_fit_config(settings))
    serving = _serving_model(trainer_store, factory, classifier)
    pipeline.classifier = serving
    desk.intents = frozenset(serving.intents)
    rasa = _rasa_backend(settings, serving)
    if rasa is not None:
        pipeline.classifier = rasa

    def activate(model: Any) -> None:
        # Attribute assignment is atomic: turns in flight finish on the old model, new ones use the new.
        if rasa is not None:
            rasa.use_fallback(model)  # Rasa stays in front; the activated model is its fallback
        else:
            pipeline.classifier = model
        desk.intents = frozenset(model.intents)

    trainer = TrainerLoop(trainer_store, factory, batching, Path(settings.nlu.training_data),
                          active_model=lambda: rasa.fallback if rasa is not None else pipeline.classifier,
                          on_activate=activate,
                          low_confidence=settings.trainer.low_confidence,
                          ambiguous_margin=settings.trainer.ambiguous_margin,
                          heldout_fraction=settings.trainer.heldout_fraction,
                          keep_versions=settings.trainer.keep_versions,
                          cluster_threshold=settings.trainer.cluster_similarity)
    services = Services(settings, db, conversations, handoffs, staff, auth, articles, batching, knowledge,
                        classifier, teams, composer, pipeline, desk, desk_store, canned, EventLog(db), notifier,
                        trainer_store=trainer_store, trainer=trainer, rasa=rasa)
    _bootstrap_admin(services)
    return services


def intent_fit_config(settings: Settings) -> FitConfig:
    """How intent models are fitted (settings.nlu)."""
    nlu = settings.nlu
    return FitConfig(method=nlu.method, folds=nlu.validation_folds, target_false_oos=nlu.target_false_oos_rate,
                     max_false_oos=nlu.max_false_oos_rate, oos_threshold=nlu.oos_threshold_override,
                     ambiguity_target_accuracy=nlu.ambiguity_target_accuracy)


def _intent_model(settings: Settings, encoder: Encoder, progress: bool) -> IntentModel:
    """Train or load the intent model; with broken training data, keep serving the last good model."""
    try:
        return load_or_train(Path(settings.nlu.training_data), encoder, settings.model_dir,
                             intent_fit_config(settings), settings.nlu.min_examples_per_intent, progress=progress)
    except (SourceFileError, ValidationError) as e:
        fallback = IntentModel.latest(settings.model_dir)
        if fallback is None:
            raise ConfigurationError(f"cannot train the intent model: {e}") from e
        log.error("training data refused (%s); serving the previous intent model %s", e, fallback.version)
        return fallback


def _serving_model(store: TrainerStore, factory: IntentModelFactory, startup: Any) -> Any:
    """The model to serve: the one trainers activated, unless the training file changed since.

    The model built at startup from the configured training data is registered as a version; it becomes
    active when no version is active yet, when the active version's files are gone, or when the training
    data changed (the file is the source of truth for a deployment).
    """
    store.fail_interrupted_jobs()
    store.register_version(startup.version, factory.method, "candidate", 0, {}, "startup")
    active = store.active_version()
    if active is not None and active.version != startup.version and active.created_by != "startup":
        loaded = factory.load(active.version)
        if loaded is not None:
            return loaded
    if active is None or active.version != startup.version:
        store.activate(startup.version, "startup")
    return startup


def _rasa_backend(settings: Settings, builtin: Any) -> RasaIntentClassifier | None:
    """The Rasa server in front of the built-in model when ``rasa.enabled`` (no request until the first message)."""
    if not settings.rasa.enabled:
        return None
    log.info("intents come from Rasa at %s (timeout %.2f s); the built-in model %s is the fallback",
             settings.rasa.url, settings.rasa.timeout_seconds, builtin.version)
    return RasaIntentClassifier.connect(
        settings.rasa.url, builtin, timeout_seconds=settings.rasa.timeout_seconds,
        retry_after_seconds=settings.rasa.retry_after_seconds, min_confidence=settings.nlu.out_of_scope_threshold)


def _bootstrap_admin(services: Services) -> None:
    """With no staff user at all, create ``admin`` so someone can log in and add the others.

    The password is the configured one, or a random one written to ``<data_dir>/admin-password.txt``
    (mode 0600); it is never logged.
    """
    if services.staff.count_users():
        return
    secret = services.settings.auth.bootstrap_admin_password
    password = secret.get_secret_value() if secret else secrets.token_urlsafe(12)
    services.auth.create_user("admin", password, [r.value for r in Role], "Administrator")
    if secret is None:
        path = services.settings.data_dir / "admin-password.txt"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(password + "\n")
        log.info("created staff user 'admin'; its password is in %s", path)
    else:
        log.info("created staff user 'admin' with the configured bootstrap password")
