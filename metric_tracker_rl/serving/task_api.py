"""OpenEnv's Task API for this environment: the TaskProvider methods and the HTTP answers to mistakes.

OpenEnv registers /list_environments and /{env_name}/splits, /tasks, /num_tasks, /task, /task_range itself and
calls these methods on a fresh environment per request. It answers an IndexError with a bare 400 and any other
exception with a 500, and documents neither its 400 nor its 404 for an unknown environment name; `serve_task_api`
makes every answer say what is valid and documents each status code in /openapi.json.

A 422 echoes the input it refused, which JSON cannot always carry (NaN, 1e999, a lone surrogate): the echoes are
made JSON-safe, so no input turns a refusal into a 500.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from metric_tracker_rl.catalog.task_splits import TaskIndexError, UnknownSplitError
from metric_tracker_rl.compat.openenv import task_index_cause

TASK_API_TAG = "Task API"
NOT_FOUND = {"description": "Unknown environment name (see /list_environments) or split (`detail` lists the splits)"}
BAD_INDEX = {
    "description": "The body is not valid JSON, or the index is outside the split (`detail` gives the valid range)"
}


async def _unknown_split(request: Request, exc: Exception) -> Response:
    return JSONResponse({"detail": str(exc)}, status_code=404)


def json_safe(value: Any) -> Any:
    """`value` as JSON can carry it: a number JSON has no literal for as its text ("nan", "inf"), a string that
    is not valid Unicode with its lone surrogates escaped, anything else not JSON as its text."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {str(json_safe(key)): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return json_safe(str(value))


async def _explained_http_error(request: Request, exc: Exception) -> Response:
    """OpenEnv turns a TaskIndexError into HTTPException(400, "Invalid task index"); pass on the reason instead.
    A detail that echoes input is made JSON-safe (OpenEnv's 422 for an invalid action echoes it)."""
    assert isinstance(exc, HTTPException)
    cause = task_index_cause(exc)
    detail = str(cause) if isinstance(cause, TaskIndexError) else json_safe(exc.detail)
    return await http_exception_handler(request, HTTPException(exc.status_code, detail=detail, headers=exc.headers))


async def _refused_input(request: Request, exc: Exception) -> Response:
    """FastAPI's 422, with the refused input echoed as JSON can carry it."""
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": json_safe(exc.errors())}, status_code=422)


def serve_task_api(app: FastAPI) -> FastAPI:
    app.add_exception_handler(UnknownSplitError, _unknown_split)
    app.add_exception_handler(HTTPException, _explained_http_error)
    app.add_exception_handler(RequestValidationError, _refused_input)
    for route in app.routes:
        if isinstance(route, APIRoute) and TASK_API_TAG in route.tags and "{env_name}" in route.path:
            route.responses.setdefault(404, NOT_FOUND)
            if route.path.endswith("/task"):
                route.responses.setdefault(400, BAD_INDEX)
    return app
