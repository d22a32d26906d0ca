"""Help-center articles: public reading and search; for editors: writes (each re-indexes only that article),
usage statistics, a section preview and "try a question"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import anyio
from fastapi import APIRouter, Header, Query, status

from api.deps import EditorDep, ServicesDep
from api.schemas import (
    ArticleIn,
    ArticleOut,
    ArticlePreviewIn,
    ArticlePreviewOut,
    ArticleSectionOut,
    ArticleStatsOut,
    ArticleSummaryOut,
    ArticleUsageOut,
    PolicyThresholdsOut,
    SearchHitOut,
    TeamNameOut,
    TryHitOut,
    TryQuestionIn,
    TryQuestionOut,
)
from bot.policy import knowledge_decision
from domain.errors import ConflictError, NotFoundError, SourceFileError, ValidationError
from domain.models import Article
from knowledge_index.articles import parse_article, render_article
from knowledge_index.chunking import chunk_article

router = APIRouter(prefix="/api/articles", tags=["knowledge base"])
# Paths of this router that GET /api/articles/{id} would never reach for an article with that id.
RESERVED_IDS = frozenset({"search", "stats", "preview", "try"})


def _url(services: ServicesDep, article_id: str) -> str:
    return services.settings.knowledge.article_url_template.format(article_id=article_id)


def _out(services: ServicesDep, a: Article) -> ArticleOut:
    return ArticleOut(id=a.id, title=a.title, body=a.body, tags=list(a.tags), locale=a.locale, team=a.team,
                      url=_url(services, a.id))


@router.get("", response_model=list[ArticleSummaryOut])
def list_articles(services: ServicesDep) -> list[ArticleSummaryOut]:
    """Every article, by id."""
    return [ArticleSummaryOut(id=a.id, title=a.title, tags=list(a.tags), team=a.team, url=_url(services, a.id),
                              updated_at=a.updated_at) for a in services.articles.list_articles()]


@router.get("/search", response_model=list[SearchHitOut])
async def search(services: ServicesDep, q: Annotated[str, Query(min_length=1, max_length=500)],
                 k: Annotated[int, Query(ge=1, le=20)] = 5) -> list[SearchHitOut]:
    """Semantic search over the knowledge base: best passage per article."""
    hits = await anyio.to_thread.run_sync(services.knowledge.search_text, q, k)
    return [SearchHitOut(article_id=h.article_id, title=h.article_title, heading=h.heading, passage=h.text,
                         score=round(h.score, 4), url=_url(services, h.article_id)) for h in hits]


@router.get("/stats", response_model=ArticleStatsOut)
def article_stats(services: ServicesDep, _: EditorDep,
                  days: Annotated[int, Query(ge=1, le=365)] = 30) -> ArticleStatsOut:
    """Every article with the bot's answers and suggestions citing it over the last ``days`` and the customers'
    reactions to them, most unhelpful reactions first (editors); with the configured teams."""
    since = datetime.now(UTC) - timedelta(days=days)
    articles = [ArticleUsageOut(id=u.id, title=u.title, tags=list(u.tags), locale=u.locale, team=u.team,
                                url=_url(services, u.id), updated_at=u.updated_at, answered=u.answered,
                                suggested=u.suggested, helpful=u.helpful, unhelpful=u.unhelpful)
                for u in services.article_usage.usage(since)]
    teams = [TeamNameOut(key=t.key, name=t.name) for t in services.teams.teams.values()]
    return ArticleStatsOut(days=days, since=since, teams=teams, articles=articles)


@router.post("/preview", response_model=ArticlePreviewOut)
def preview_article(services: ServicesDep, _: EditorDep, body: ArticlePreviewIn) -> ArticlePreviewOut:
    """A draft cut into the sections the bot can quote, exactly as saving it would (editors)."""
    draft = Article(id="preview", title=body.title.strip(), body=body.body.strip())
    chunks = chunk_article(draft, services.settings.knowledge.chunk_max_words)
    return ArticlePreviewOut(sections=[ArticleSectionOut(heading=c.heading, text=c.text) for c in chunks])


@router.post("/try", response_model=TryQuestionOut)
async def try_question(services: ServicesDep, _: EditorDep, body: TryQuestionIn) -> TryQuestionOut:
    """What the bot's knowledge-base step would do with a customer question now (editors).

    The same search as a customer turn (``settings.knowledge.search_k`` articles, scored the same way) and the
    same thresholds (:func:`bot.policy.knowledge_decision`). A turn's full decision also depends on intent,
    urgency and the conversation, which this leaves out.
    """
    text = body.text.strip()
    if not text:
        raise ValidationError("the question is empty")
    hits = await anyio.to_thread.run_sync(services.knowledge.search_text, text, services.settings.knowledge.search_k)
    policy = services.settings.policy
    decision = knowledge_decision(hits, policy)
    chosen = {h.article_id for h in decision.hits} if decision else set()
    if decision is None:
        best = f"best score {hits[0].score:.2f}" if hits else "no articles indexed"
        detail = f"no article reaches the suggestion threshold {policy.suggest_threshold:.2f} ({best})"
    else:
        detail = decision.detail
    return TryQuestionOut(
        decision=decision.kind.value if decision else "none", detail=detail,
        hits=[TryHitOut(article_id=h.article_id, title=h.article_title, heading=h.heading, passage=h.text,
                        score=round(h.score, 4), url=_url(services, h.article_id), chosen=h.article_id in chosen)
              for h in hits],
        thresholds=PolicyThresholdsOut(answer_threshold=policy.answer_threshold, answer_margin=policy.answer_margin,
                                       suggest_threshold=policy.suggest_threshold,
                                       max_suggestions=policy.max_suggestions))


@router.get("/{article_id}", response_model=ArticleOut)
def read_article(services: ServicesDep, article_id: str) -> ArticleOut:
    """One article."""
    article = services.articles.get_article(article_id)
    if article is None:
        raise NotFoundError(f"article {article_id} does not exist")
    return _out(services, article)


@router.put("/{article_id}", response_model=ArticleOut)
def put_article(services: ServicesDep, _: EditorDep, article_id: str, body: ArticleIn,
                if_none_match: Annotated[str | None, Header()] = None) -> ArticleOut:
    """Create or replace an article (editors); only its own chunks are re-encoded.

    With ``If-None-Match: *`` it only creates: 409 when the id is taken. A body whose headings have no text
    under them is refused: the bot would have nothing to quote.
    """
    draft = Article(id=article_id, title=body.title.strip(), body=body.body.strip(),
                    tags=tuple(t.strip().lower() for t in body.tags if t.strip()), locale=body.locale,
                    team=body.team)
    # Round-trip through the markdown parser so the API enforces exactly the import rules.
    try:
        article = parse_article(render_article(draft), f"article {article_id}")
    except SourceFileError as e:
        raise ValidationError(e.problem.reason) from e
    if article_id in RESERVED_IDS:
        raise ValidationError(f"the id {article_id!r} is taken by the API itself; choose another")
    if not chunk_article(article, services.settings.knowledge.chunk_max_words):
        raise ValidationError("the article has headings but no text under them: the bot would have nothing to quote")
    if if_none_match is not None and if_none_match.strip() == "*" and services.articles.get_article(article_id):
        raise ConflictError(f"an article with the id {article_id!r} already exists")
    services.knowledge.upsert(article)
    return _out(services, article)


@router.delete("/{article_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_article(services: ServicesDep, _: EditorDep, article_id: str) -> None:
    """Remove an article and its vectors (editors)."""
    if not services.knowledge.delete(article_id):
        raise NotFoundError(f"article {article_id} does not exist")
