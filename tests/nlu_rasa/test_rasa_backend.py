"""The Rasa backend against a fake ``/model/parse`` server on 127.0.0.1: mapping, fallback, circuit breaker."""

from __future__ import annotations

import logging
import math
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from knowledge_index.encoder import HashEncoder
from nlu.rasa_backend import (
    CircuitBreaker,
    RasaClient,
    RasaError,
    RasaIntentClassifier,
    parse_ranking,
    to_prediction,
)
from settings import RasaSettings, Settings
from tests.conftest import make_settings
from tests.nlu_rasa.fakes import FakeClock, FakeRasa, FixedClassifier, fake_rasa
from wiring import build_services

pytestmark = pytest.mark.unit
VECTOR = np.zeros(8, dtype=np.float32)
SECRET_TEXT = "my card 4111 1111 1111 1111 was charged twice"


@pytest.fixture
def rasa() -> Iterator[FakeRasa]:
    with fake_rasa() as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def backend(url: str, clock: FakeClock, timeout: float = 0.5, retry_after: float = 30.0) -> RasaIntentClassifier:
    return RasaIntentClassifier(RasaClient(url, timeout), FixedClassifier(), retry_after_seconds=retry_after,
                                min_confidence=0.35, clock=clock)


@pytest.fixture
def classifier(rasa: FakeRasa, clock: FakeClock) -> Iterator[RasaIntentClassifier]:
    model = backend(rasa.url, clock, timeout=0.3)
    yield model
    model.close()


def dead_url() -> str:
    """A loopback port nobody listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- mapping --------------------------------------------------------------------------------------

def test_maps_the_intent_ranking(classifier: RasaIntentClassifier, rasa: FakeRasa) -> None:
    prediction = classifier.predict("I want my money back", VECTOR)
    assert prediction.intent == "refund_request"
    assert prediction.confidence == pytest.approx(0.81)
    assert [name for name, _ in prediction.ranking] == ["refund_request", "billing_charge_dispute", "greet"]
    assert prediction.margin == pytest.approx(0.69)
    assert not prediction.out_of_scope
    assert prediction.model_version == "rasa:nlu-test"
    assert classifier.version == "rasa:nlu-test"
    assert classifier.intents == FixedClassifier.intents
    assert rasa.parsed == ["I want my money back"]


def test_low_confidence_is_out_of_scope(classifier: RasaIntentClassifier, rasa: FakeRasa) -> None:
    rasa.ranking = [{"name": "greet", "confidence": 0.30}, {"name": "refund_request", "confidence": 0.28}]
    prediction = classifier.predict("what is the meaning of life", VECTOR)
    assert prediction.out_of_scope and prediction.intent is None
    assert prediction.top_intent == "greet"


def test_rasa_fallback_intent_means_out_of_scope_and_leaves_the_ranking() -> None:
    ranking = parse_ranking({"intent_ranking": [{"name": "nlu_fallback", "confidence": 0.7},
                                                {"name": "greet", "confidence": 0.2}]})
    prediction = to_prediction(ranking, "rasa:m", 0.1)
    assert prediction.out_of_scope and prediction.intent is None
    assert prediction.ranking == (("greet", pytest.approx(0.2)),)


def test_ranking_is_sorted_and_unique() -> None:
    body = {"intent_ranking": [{"name": "a", "confidence": 0.2}, {"name": "b", "confidence": 0.7},
                               {"name": "a", "confidence": 0.1}, {"name": "c", "confidence": 1}]}
    assert parse_ranking(body) == [("c", 1.0), ("b", 0.7), ("a", 0.2)]
    # A one-intent model answers with "intent" only.
    assert parse_ranking({"intent": {"name": "greet", "confidence": 1.0}}) == [("greet", 1.0)]


@pytest.mark.parametrize("body", [
    None, [], "text", {}, {"intent_ranking": []}, {"intent_ranking": "greet"},
    {"intent": {"name": None, "confidence": 0.0}, "intent_ranking": []},  # Rasa without an NLU model
    {"intent_ranking": ["greet"]},
    {"intent_ranking": [{"name": "", "confidence": 0.5}]},
    {"intent_ranking": [{"name": 3, "confidence": 0.5}]},
    {"intent_ranking": [{"name": "greet"}]},
    {"intent_ranking": [{"name": "greet", "confidence": "0.5"}]},
    {"intent_ranking": [{"name": "greet", "confidence": True}]},
    {"intent_ranking": [{"name": "greet", "confidence": math.nan}]},
    {"intent_ranking": [{"name": "greet", "confidence": 1.5}]},
    {"intent_ranking": [{"name": "greet", "confidence": -0.2}]},
])
def test_garbage_bodies_are_refused(body: Any) -> None:
    with pytest.raises(RasaError):
        parse_ranking(body)


# --- fallback -------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["garbage", "wrong_shape", "error"])
def test_bad_answers_fall_back(classifier: RasaIntentClassifier, rasa: FakeRasa, mode: str) -> None:
    classifier.predict("warm up", VECTOR)  # learns the model name first
    rasa.mode = mode
    prediction = classifier.predict("hello", VECTOR)
    assert prediction.model_version == "builtin-1" and prediction.intent == "greet"
    assert not classifier.using_rasa


def test_timeout_falls_back_and_the_open_circuit_costs_nothing(classifier: RasaIntentClassifier,
                                                               rasa: FakeRasa) -> None:
    classifier.predict("warm up", VECTOR)
    rasa.mode = "slow"
    start = time.perf_counter()
    assert classifier.predict("hello", VECTOR).model_version == "builtin-1"
    first = time.perf_counter() - start
    assert first < rasa.delay  # gave up at the 0.3 s timeout, not when the server answered
    asked = len(rasa.parsed)
    start = time.perf_counter()
    for _ in range(20):
        assert classifier.predict("hello again", VECTOR).model_version == "builtin-1"
    assert time.perf_counter() - start < 0.2  # the open circuit does not wait for Rasa again
    assert len(rasa.parsed) == asked


def test_dead_server_falls_back_and_logs_one_warning_without_the_text(
        clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    model = backend(dead_url(), clock)
    try:
        with caplog.at_level(logging.INFO, logger="nlu.rasa_backend"):
            for _ in range(3):
                assert model.predict(SECRET_TEXT, VECTOR).model_version == "builtin-1"
            clock.advance(31)
            assert model.predict(SECRET_TEXT, VECTOR).model_version == "builtin-1"  # the retry fails too
    finally:
        model.close()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "unavailable" in warnings[0].getMessage()
    assert all("4111" not in r.getMessage() and "charged" not in r.getMessage() for r in caplog.records)


def test_recovers_after_retry_after(classifier: RasaIntentClassifier, rasa: FakeRasa, clock: FakeClock,
                                    caplog: pytest.LogCaptureFixture) -> None:
    rasa.mode = "error"
    assert classifier.predict("hello", VECTOR).model_version == "builtin-1"
    rasa.mode = "ok"
    clock.advance(29)
    assert classifier.predict("hello", VECTOR).model_version == "builtin-1"  # still waiting
    assert rasa.parsed == []
    clock.advance(2)
    with caplog.at_level(logging.INFO, logger="nlu.rasa_backend"):
        prediction = classifier.predict("refund please", VECTOR)
    assert prediction.model_version == "rasa:nlu-test" and prediction.intent == "refund_request"
    assert classifier.using_rasa
    assert any("answers again" in r.getMessage() for r in caplog.records)
    assert classifier.predict("and again", VECTOR).model_version == "rasa:nlu-test"


def test_a_restarted_server_is_found_again(clock: FakeClock) -> None:
    """Down (connection refused), then a server on that port again: Rasa is used after retry_after."""
    url = dead_url()
    model = backend(url, clock, retry_after=5)
    try:
        assert model.predict("hi", VECTOR).model_version == "builtin-1"
        late = FakeRasa(port=int(url.rsplit(":", 1)[1])).start()  # the same port, answering now
        try:
            clock.advance(6)
            assert model.predict("hi", VECTOR).model_version == "rasa:nlu-test"
        finally:
            late.stop()
    finally:
        model.close()


def test_switching_the_fallback_model(classifier: RasaIntentClassifier, rasa: FakeRasa) -> None:
    class Other(FixedClassifier):
        version = "builtin-2"
        intents: tuple[str, ...] = ("greet",)

    classifier.use_fallback(Other())
    assert classifier.intents == ("greet",)
    rasa.mode = "error"
    assert classifier.predict("hi", VECTOR).model_version == "builtin-2"


# --- the breaker on its own -------------------------------------------------------------------------

def test_breaker_lets_exactly_one_trial_through(clock: FakeClock) -> None:
    breaker = CircuitBreaker(10, clock)
    assert breaker.allow() and not breaker.is_open
    assert breaker.failure() is True
    assert breaker.failure() is False  # already open
    assert not breaker.allow()
    clock.advance(10)
    assert breaker.allow()
    assert not breaker.allow()  # the trial is in flight
    assert breaker.failure() is False
    assert not breaker.allow()
    clock.advance(10)
    assert breaker.allow()
    assert breaker.success() is True
    assert breaker.allow() and breaker.allow()


# --- settings and wiring --------------------------------------------------------------------------

def test_settings_defaults_environment_and_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    assert RasaSettings() == RasaSettings(enabled=False, url="http://127.0.0.1:5005", timeout_seconds=0.5,
                                          retry_after_seconds=30)
    monkeypatch.setenv("FRONTDESK_RASA__ENABLED", "true")
    monkeypatch.setenv("FRONTDESK_RASA__URL", "http://127.0.0.1:5999")
    monkeypatch.setenv("FRONTDESK_RASA__TIMEOUT_SECONDS", "0.25")
    settings = Settings(_env_file=None)
    assert settings.rasa.enabled and settings.rasa.url == "http://127.0.0.1:5999"
    assert settings.rasa.timeout_seconds == 0.25
    for bad in ({"url": "127.0.0.1:5005"}, {"timeout_seconds": 0}, {"retry_after_seconds": -1}):
        with pytest.raises(ValidationError):
            RasaSettings(**bad)


def test_wiring_puts_rasa_in_front_of_the_builtin_model(tmp_path: Path, rasa: FakeRasa,
                                                        hash_encoder: HashEncoder) -> None:
    settings = make_settings(tmp_path, rasa=RasaSettings(enabled=True, url=rasa.url))
    services = build_services(settings, encoder=hash_encoder)
    try:
        serving = services.serving
        assert serving.rasa is not None and services.pipeline.classifier is serving
        assert serving.rasa.fallback is serving.model
        assert serving.rasa.intents == serving.intents
        vector = hash_encoder.encode(["I want a refund"])[0]
        assert serving.predict("I want a refund", vector).intent == "refund_request"
        rasa.mode = "error"
        assert serving.predict("hi", vector).model_version == serving.version
    finally:
        services.close()
