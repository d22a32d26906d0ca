"""HTML pages: the customer chat at ``/``, the staff pages (agent, trainer, editor, KPIs), the help center (escaped)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates
from markdown_it import MarkdownIt
from markupsafe import Markup

from api.deps import ServicesDep
from domain.errors import NotFoundError
from knowledge_index.repository import ArticleSummary

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
templates = Jinja2Templates(directory=str(WEB_DIR / "templates"))  # autoescape is on for .html
# html=False: raw HTML inside an article is shown as text, never injected into the page.
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).disable("image")

router = APIRouter(include_in_schema=False)


def render_markdown(text: str) -> Markup:
    """Article markdown to safe HTML (raw HTML escaped, unsafe link schemes refused by markdown-it)."""
    return Markup(_markdown.render(text))


@router.get("/")
def chat_page() -> FileResponse:
    """The customer chat page."""
    return FileResponse(WEB_DIR / "static" / "chat.html", media_type="text/html")


@router.get("/agent")
def agent_console() -> FileResponse:
    """The agent console (a static page; it logs in and reads the desk API with a bearer token)."""
    return FileResponse(WEB_DIR / "static" / "agent.html", media_type="text/html")


@router.get("/kpis")
def kpi_page() -> FileResponse:
    """The operators' KPIs (a static page; supervisors and admins log in and read ``/api/kpis``)."""
    return FileResponse(WEB_DIR / "static" / "kpis.html", media_type="text/html")


@router.get("/trainer")
def trainer_page() -> FileResponse:
    """The trainers' page (a static page; it logs in and reads the trainer API with a bearer token)."""
    return FileResponse(WEB_DIR / "static" / "trainer.html", media_type="text/html")


@router.get("/editor")
def editor_page() -> FileResponse:
    """The knowledge editors' page (a static page; editors and admins log in and use ``/api/articles``)."""
    return FileResponse(WEB_DIR / "static" / "editor.html", media_type="text/html")


@router.get("/help", response_class=HTMLResponse)
def help_index(request: Request, services: ServicesDep) -> HTMLResponse:
    """Every article, grouped by team."""
    groups: dict[str, list[ArticleSummary]] = {}
    for article in services.articles.list_articles():
        groups.setdefault(article.team or "general", []).append(article)
    return templates.TemplateResponse(request, "help_index.html", {"groups": sorted(groups.items())})


@router.get("/help/articles/{article_id}", response_class=HTMLResponse)
def help_article(request: Request, services: ServicesDep, article_id: str) -> HTMLResponse:
    """One article as a page."""
    article = services.articles.get_article(article_id)
    if article is None:
        raise NotFoundError(f"article {article_id} does not exist")
    return templates.TemplateResponse(request, "help_article.html",
                                      {"article": article, "body_html": render_markdown(article.body)})
