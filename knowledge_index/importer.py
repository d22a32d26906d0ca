"""Import a folder of markdown articles: good files are loaded, each bad one is reported with path and reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from domain.errors import SourceFileError, SourceProblem
from knowledge_index.articles import find_article_files, read_article
from knowledge_index.knowledge_base import KnowledgeBase, UpsertStatus


@dataclass
class ImportReport:
    """Counts per outcome and the problems found."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    problems: list[SourceProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every file was imported."""
        return not self.problems

    def summary(self) -> str:
        """One line for humans."""
        return (
            f"{len(self.created)} created, {len(self.updated)} updated, {len(self.unchanged)} unchanged, "
            f"{len(self.deleted)} deleted, {len(self.problems)} with problems"
        )


def import_folder(kb: KnowledgeBase, folder: Path, prune: bool = False, progress: bool = False) -> ImportReport:
    """Import every ``*.md`` below ``folder`` into the knowledge base.

    Args:
        kb: the knowledge base to write to.
        folder: a folder of markdown files with front matter.
        prune: also delete articles that are no longer in the folder.
        progress: draw a progress bar on stderr.

    Returns:
        An ImportReport; a bad file never stops the others from loading.
    """
    report = ImportReport()
    if not folder.is_dir():
        report.problems.append(SourceProblem(str(folder), None, "not a folder"))
        return report
    seen: dict[str, str] = {}
    files = find_article_files(folder)
    for path in tqdm(files, desc="Importing articles", unit="article", disable=not progress):
        try:
            article = read_article(path)
        except SourceFileError as e:
            report.problems.append(e.problem)
            continue
        if article.id in seen:
            report.problems.append(
                SourceProblem(str(path), 2, f"id {article.id!r} is already used by {seen[article.id]}")
            )
            continue
        seen[article.id] = str(path)
        result = kb.upsert(article)
        {
            UpsertStatus.CREATED: report.created,
            UpsertStatus.UPDATED: report.updated,
            UpsertStatus.UNCHANGED: report.unchanged,
        }[result.status].append(article.id)
    if prune:
        for summary in kb.repo.list_articles():
            if summary.id not in seen and kb.delete(summary.id):
                report.deleted.append(summary.id)
    return report
