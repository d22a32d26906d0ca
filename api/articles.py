"""Help-center articles: public reading and search, editor writes (each re-indexes only that article)."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Query, status

from api.deps import EditorDep, ServicesDep
from api.schemas import ArticleIn, ArticleOut, ArticleSummaryOut, SearchHitOut
from domain.errors import NotFoundError, SourceFileError, ValidationError
from domain.models import Article
from knowledge_index.articles import parse_article, render_article

router = APIRouter(prefix="/api/articles", tags=["knowledge base"])


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


@router.get("/{article_id}", response_model=ArticleOut)
def read_article(services: ServicesDep, article_id: str) -> ArticleOut:
    """One article."""
    article = services.articles.get_article(article_id)
    if article is None:
        raise NotFoundError(f"article {article_id} does not exist")
    return _out(services, article)


@router.put("/{article_id}", response_model=ArticleOut)
def put_article(services: ServicesDep, _: EditorDep, article_id: str, body: ArticleIn) -> ArticleOut:
    """Create or replace an article (editors); only its own chunks are re-encoded."""
    draft = Article(id=article_id, title=body.title.strip(), body=body.body.strip(),
                    tags=tuple(t.strip().lower() for t in body.tags if t.strip()), locale=body.locale,
                    team=body.team)
    # Round-trip through the markdown parser so the API enforces exactly the import rules.
    try:
        article = parse_article(render_article(draft), f"article {article_id}")
    except SourceFileError as e:
        raise ValidationError(e.problem.reason) from e
    services.knowledge.upsert(article)
    return _out(services, article)


@router.delete("/{article_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_article(services: ServicesDep, _: EditorDep, article_id: str) -> None:
    """Remove an article and its vectors (editors)."""
    if not services.knowledge.delete(article_id):
        raise NotFoundError(f"article {article_id} does not exist")
