"""OpenEnv's layout entry point: the app and `main` live in `metric_tracker_rl.serving.app`.

`uvicorn server.app:app`, `python -m server.app` and `openenv.yaml`'s `app: server.app:app` resolve here, in a
checkout of the repository; the installed package serves through its `server` script and needs no top-level
`server` module."""

from __future__ import annotations

from typing import Any


def main(argv: list[str] | None = None) -> None:
    from metric_tracker_rl.serving.app import main as serve

    serve(argv)


def __getattr__(name: str) -> Any:
    if name == "app":
        from metric_tracker_rl.serving import app as implementation

        return getattr(implementation, name)
    raise AttributeError(name)


if __name__ == "__main__":
    main()
