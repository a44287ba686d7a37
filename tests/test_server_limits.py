"""What a stranger's requests may cost, against a live server where it matters: an IPv6 /64 is one client (for the
session cap, the parse budget and the SQL workers' turns), no input gets a 5xx or names an internal function,
resets are metered, and the full server's places go to newcomers whatever the incumbents do.

Clients are loopback addresses; IPv6 clients are named by X-Forwarded-For from loopback (a trusted proxy), as a
Space's proxy names its visitors."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from conftest import running_server
from test_fair_sessions import open_session, refusal

from metric_tracker_rl.serving.client_address import address_group, client_of

PER_CLIENT = 3


# --- an IPv6 /64 is one client --------------------------------------------------------------------------------

@pytest.mark.parametrize(("host", "group"), [
    ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
    ("2001:DB8:1:3::1", "2001:db8:1:3::/64"),
    ("fe80::1%eth0", "fe80::/64"),
    ("::ffff:203.0.113.9", "203.0.113.9"),
    ("203.0.113.9", "203.0.113.9"),
    ("unknown", "unknown"),
])
def test_addresses_count_as_their_group(host: str, group: str) -> None:
    assert address_group(host) == group
    assert client_of({"client": (host, 1234)}) == group


def test_every_limit_keys_on_the_group() -> None:
    """The parse budget and the SQL workers' turns take the client from `client_of`, the session cap too."""
    import inspect

    from metric_tracker_rl.serving import client_address, hardening, sessions

    for module in (hardening, sessions, client_address):
        source = inspect.getsource(module)
        assert 'scope.get("client")' not in source.replace("def client_of", "") or module is client_address
        assert "client_of(scope)" in source


@pytest.fixture(scope="module")
def capped_server() -> Iterator[str]:
    with running_server(extra_env={"MAX_SESSIONS_PER_CLIENT": str(PER_CLIENT), "ENABLE_WEB_INTERFACE": "false",
                                   "SQL_WORKERS": "2"}) as url:
        yield url


@pytest.mark.slow
def test_the_session_cap_counts_an_ipv6_64_as_one_client(capped_server: str) -> None:
    with contextlib.ExitStack() as stack:
        for host in range(1, PER_CLIENT + 1):
            ws = stack.enter_context(open_session(capped_server, "127.0.0.1",
                                                  {"X-Forwarded-For": f"2001:db8:59:1::{host}"}))
            assert refusal(ws) is None
        another = stack.enter_context(open_session(capped_server, "127.0.0.1",
                                                   {"X-Forwarded-For": "2001:db8:59:1:ffff::9"}))
        refused = refusal(another)
        assert refused is not None and refused["data"]["code"] == "CAPACITY_REACHED", refused
        neighbour = stack.enter_context(open_session(capped_server, "127.0.0.1",
                                                     {"X-Forwarded-For": "2001:db8:59:2::1"}))
        assert refusal(neighbour) is None
