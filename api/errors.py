"""Turn the project's exceptions into JSON errors; nothing internal ever reaches the client."""

from __future__ import annotations

import logging
import traceback

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sql_errors
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.errors import (
    AuthenticationError,
    ConflictError,
    FrontdeskError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)

log = logging.getLogger(__name__)

_STATUS: list[tuple[type[FrontdeskError], int, str]] = [
    (NotFoundError, 404, "not_found"),
    (AuthenticationError, 401, "unauthenticated"),
    (PermissionDeniedError, 403, "forbidden"),
    (ValidationError, 422, "invalid_input"),
    (ConflictError, 409, "conflict"),
]
INTERNAL_MESSAGE = "Something went wrong on our side. Nothing you sent was lost; please try again shortly."
UNAVAILABLE_MESSAGE = ("The service cannot reach its database right now. Please try again in a few seconds; a "
                       "message sent again with the same client_message_id is never processed twice.")
RETRY_AFTER_SECONDS = 5
# The database is down, restarting or unreachable: the request may simply be retried.
_UNAVAILABLE = (sql_errors.OperationalError, sql_errors.InterfaceError, sql_errors.TimeoutError)


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    """The one error shape: ``{"error": {"code", "message"}}``."""
    return {"error": {"code": code, "message": message}}


def install_error_handlers(app: FastAPI) -> None:
    """Register handlers for our errors, request validation, HTTP errors and anything unexpected."""

    @app.exception_handler(FrontdeskError)
    async def _ours(_: Request, exc: FrontdeskError) -> JSONResponse:
        for kind, status, code in _STATUS:
            if isinstance(exc, kind):
                headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
                return JSONResponse(error_body(code, str(exc)), status_code=status, headers=headers)
        log.error("unmapped error %s\n%s", type(exc).__name__, "".join(traceback.format_tb(exc.__traceback__)))
        return JSONResponse(error_body("internal_error", INTERNAL_MESSAGE), status_code=500)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            loc = tuple(err.get("loc", ()))
            # Drop where the value came from (body, query, ...), not a field that happens to share its name.
            if loc and loc[0] in ("body", "query", "path"):
                loc = loc[1:]
            where = ".".join(str(x) for x in loc)
            parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return JSONResponse(error_body("invalid_input", "; ".join(parts) or "invalid request"), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated", 403: "forbidden"}.get(
            exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    async def _unavailable(_: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", type(exc).__name__)
        return JSONResponse(error_body("unavailable", UNAVAILABLE_MESSAGE), status_code=503,
                            headers={"Retry-After": str(RETRY_AFTER_SECONDS)})

    for kind in _UNAVAILABLE:
        app.add_exception_handler(kind, _unavailable)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Type and frames only: exception messages may quote customer text.
        log.error("unhandled %s\n%s", type(exc).__name__, "".join(traceback.format_tb(exc.__traceback__)))
        return JSONResponse(error_body("internal_error", INTERNAL_MESSAGE), status_code=500)
