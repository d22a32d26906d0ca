"""The project's exception tree; routes translate these into HTTP responses."""

from __future__ import annotations

from dataclasses import dataclass


class FrontdeskError(Exception):
    """Base class of every error this project raises on purpose."""


class ConfigurationError(FrontdeskError):
    """Settings are invalid or a configured file cannot be used; raised at startup."""


class NotFoundError(FrontdeskError):
    """A conversation, article, handoff or user does not exist."""


class PermissionDeniedError(FrontdeskError):
    """The caller is authenticated but may not touch this resource."""


class AuthenticationError(FrontdeskError):
    """Missing or invalid credentials."""


class ValidationError(FrontdeskError):
    """Input is well-formed JSON but breaks a rule (empty message, too long, ...)."""


class ConflictError(FrontdeskError):
    """The request conflicts with the current state (e.g. already claimed)."""


@dataclass(frozen=True)
class SourceProblem:
    """One bad input file (article, YAML) with where and why."""

    path: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.reason}"


class SourceFileError(FrontdeskError):
    """A source file (markdown article, Rasa YAML, teams config) cannot be read."""

    def __init__(self, problem: SourceProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


class EncoderError(FrontdeskError):
    """The sentence encoder failed or could not be loaded."""


class PipelineError(FrontdeskError):
    """A step of the turn pipeline failed; the turn becomes a handoff."""
