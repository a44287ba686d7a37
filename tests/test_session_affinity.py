"""The cookies a session's create answer sets (a proxy's affinity cookie) go with the session's socket and close,
beside the client's own headers: read from a real HTTP answer, as a proxy writes Set-Cookie."""

from __future__ import annotations

import httpx
from hypothesis import given
from hypothesis import strategies as st

from metric_tracker_rl.client import with_session_cookies

NAMES = st.text(alphabet="abcdefghij_", min_size=1, max_size=6)
VALUES = st.text(alphabet="abcdefghij0123456789", min_size=1, max_size=8)


def answer_cookies(set_cookies: dict[str, str]) -> httpx.Cookies:
    """The cookies of a create answer that sets `set_cookies` (HAProxy's `insert` writes `name=value; path=/`)."""
    response = httpx.Response(
        200,
        headers=[("set-cookie", f"{name}={value}; path=/") for name, value in set_cookies.items()],
        request=httpx.Request("POST", "http://127.0.0.1:8000/mcp"),
    )
    return response.cookies


def sent_pairs(headers: dict[str, str] | None) -> list[list[str]]:
    """The name=value pairs of the Cookie header, in order."""
    cookie = (headers or {}).get("Cookie", "")
    return [pair.strip().split("=", 1) for pair in cookie.split(";") if pair.strip()]


@given(own=st.dictionaries(NAMES, VALUES, max_size=3), new=st.dictionaries(NAMES, VALUES, max_size=3))
def test_the_session_cookies_join_the_clients_own_and_replace_those_of_the_same_name(
    own: dict[str, str], new: dict[str, str]
) -> None:
    headers = {
        "X-Forwarded-For": "192.0.2.7",
        **({"Cookie": "; ".join(f"{k}={v}" for k, v in own.items())} if own else {}),
    }
    sent = with_session_cookies(headers, answer_cookies(new))
    assert sent is not None and sent["X-Forwarded-For"] == "192.0.2.7"
    if not new:
        assert sent == headers  # no affinity cookie: the client's headers as they were
        return
    pairs = sent_pairs(sent)
    assert {name: value for name, value in pairs} == {**own, **new} and len(pairs) == len({**own, **new})


def test_a_client_without_headers_sends_only_the_affinity_cookie() -> None:
    assert with_session_cookies(None, answer_cookies({"metric_tracker_replica": "replica2"})) == {
        "Cookie": "metric_tracker_replica=replica2"
    }
    assert with_session_cookies(None, answer_cookies({})) is None
