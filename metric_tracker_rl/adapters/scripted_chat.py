"""A scripted chat model on a loopback port: an OpenAI-compatible `/v1/chat/completions` that answers each turn
with the next native tool call of a script (then a closing message), streamed or not, as a real endpoint would.
A harness that talks to a model endpoint (verifiers' `vf-eval`, an OpenAI client) plays an episode with it offline:

    from metric_tracker_rl.adapters.scripted_chat import ScriptedChatModel, serving_model

    with serving_model(ScriptedChatModel([("task_overview", {}), ("submit_report", {"rows": []})])) as base_url:
        ...  # point the harness at base_url (it ends in /v1); any API key

A script is a list of (tool name, arguments); a reference agent's own calls make one that scores what the agent
scores (`action_tool_call` of each action it sends). The model refuses a turn whose request does not offer the
scripted tool, so a harness that fails to pass the tools on is caught, and it records every request."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CLOSING_TEXT = "The report is submitted."


class ScriptedChatModel:
    def __init__(self, calls: list[tuple[str, dict[str, Any]]], model: str = "scripted") -> None:
        self.calls = calls
        self.model = model
        self.requests: list[dict[str, Any]] = []

    def turn_message(self, request: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """The assistant message for this request (its turn = tool results seen so far) and its finish reason."""
        turn = sum(1 for message in request.get("messages", []) if message.get("role") == "tool")
        if turn >= len(self.calls):
            return {"role": "assistant", "content": CLOSING_TEXT}, "stop"
        name, arguments = self.calls[turn]
        offered = {tool["function"]["name"] for tool in request.get("tools") or []}
        if name not in offered:
            raise LookupError(f"turn {turn}: tool {name!r} is not offered; offered: {sorted(offered)}")
        call = {
            "id": f"call_{turn}",
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments)},
        }
        return {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"

    def completion(self, message: dict[str, Any], finish_reason: str) -> dict[str, Any]:
        return {
            "id": "chatcmpl-scripted",
            "object": "chat.completion",
            "created": 0,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }

    def chunks(self, message: dict[str, Any], finish_reason: str) -> Iterator[dict[str, Any]]:
        base = {"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": 0, "model": self.model}
        delta: dict[str, Any] = {"role": "assistant", "content": message.get("content")}
        if message.get("tool_calls"):
            delta["tool_calls"] = [{"index": index, **call} for index, call in enumerate(message["tool_calls"])]
        yield {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
        yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish_reason}]}
        yield {**base, "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


def _handler(model: ScriptedChatModel) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self.path.rstrip("/").endswith("/models"):
                listing = {"object": "list", "data": [{"id": model.model, "object": "model", "owned_by": "test"}]}
                self._send(200, json.dumps(listing).encode(), "application/json")
            else:
                self._send(404, b'{"error": {"message": "not found"}}', "application/json")

        def do_POST(self) -> None:  # noqa: N802
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            model.requests.append(request)
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send(404, b'{"error": {"message": "only chat completions"}}', "application/json")
                return
            try:
                message, finish_reason = model.turn_message(request)
            except LookupError as error:
                self._send(400, json.dumps({"error": {"message": str(error)}}).encode(), "application/json")
                return
            if not request.get("stream"):
                self._send(200, json.dumps(model.completion(message, finish_reason)).encode(), "application/json")
                return
            events = (
                b"".join(f"data: {json.dumps(chunk)}\n\n".encode() for chunk in model.chunks(message, finish_reason))
                + b"data: [DONE]\n\n"
            )
            self._send(200, events, "text/event-stream")

    return Handler


@contextlib.contextmanager
def serving_model(model: ScriptedChatModel) -> Iterator[str]:
    """Serve `model` on a free loopback port; yields its OpenAI base URL (ending in /v1)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(model))
    thread = threading.Thread(target=server.serve_forever, name="scripted-chat-model", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
