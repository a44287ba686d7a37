"""OpenEnv's Task API for this environment: the TaskProvider methods and the HTTP answers to mistakes.

OpenEnv registers /list_environments and /{env_name}/splits, /tasks, /num_tasks, /task, /task_range itself and
calls these methods on a fresh environment per request. It answers an IndexError with a bare 400 and any other
exception with a 500, and documents neither its 400 nor its 404 for an unknown environment name; `serve_task_api`
makes every answer say what is valid and documents each status code in /openapi.json.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from metric_tracker_rl.adapters.openenv_internals import task_index_cause
from metric_tracker_rl.spec.task_splits import TaskIndexError, UnknownSplitError

TASK_API_TAG = "Task API"
NOT_FOUND = {"description": "Unknown environment name (see /list_environments) or split (`detail` lists the splits)"}
BAD_INDEX = {"description": "The body is not valid JSON, or the index is outside the split (`detail` gives the "
                            "valid range)"}


async def _unknown_split(request: Request, exc: Exception) -> Response:
    return JSONResponse({"detail": str(exc)}, status_code=404)


async def _explained_http_error(request: Request, exc: Exception) -> Response:
    """OpenEnv turns a TaskIndexError into HTTPException(400, "Invalid task index"); pass on the reason instead."""
    assert isinstance(exc, HTTPException)
    cause = task_index_cause(exc)
    if isinstance(cause, TaskIndexError):
        exc = HTTPException(exc.status_code, detail=str(cause), headers=exc.headers)
    return await http_exception_handler(request, exc)


def serve_task_api(app: FastAPI) -> FastAPI:
    app.add_exception_handler(UnknownSplitError, _unknown_split)
    app.add_exception_handler(HTTPException, _explained_http_error)
    for route in app.routes:
        if isinstance(route, APIRoute) and TASK_API_TAG in route.tags and "{env_name}" in route.path:
            route.responses.setdefault(404, NOT_FOUND)
            if route.path.endswith("/task"):
                route.responses.setdefault(400, BAD_INDEX)
    return app
