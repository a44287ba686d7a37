"""A full server is fair to a newcomer whatever its incumbents do, and its retry hint is what happens, against a live
server. The incumbents here keep every place busy with a cheap step each second (under FULL_SERVER_IDLE_S), which
no idle clock reclaims: an address holding more places than the newcomer gives one up at once, and among equal
holders the newcomer is told when a place is made for it, and is served when it comes back then.

Clients are told apart by their loopback source address."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator

import pytest
from conftest import running_server
from session_helpers import hold, open_session, refusal
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

pytestmark = pytest.mark.slow  # starts a server process

CAPACITY = 8
FULL_IDLE_S = 10  # well over a round of the incumbents' steps, on a busy machine too
WORK_EVERY_S = 1.0
CHEAP_QUERY = json.dumps(
    {"type": "step", "data": {"analysis_method": "query", "analysis_args": {"sql": "SELECT 1 AS one"}}}
)


SERVER_ENV = {
    "MAX_CONCURRENT_ENVS": str(CAPACITY),
    "MAX_SESSIONS_PER_CLIENT": "4",
    "FULL_SERVER_IDLE_S": str(FULL_IDLE_S),
}


@pytest.fixture(scope="module")
def full_server() -> Iterator[str]:
    with running_server(extra_env=SERVER_ENV) as url:
        yield url


@pytest.fixture
def own_server() -> Iterator[str]:
    """A server no other test has asked a place of (a client told to wait keeps a place made for it a while)."""
    with running_server(extra_env=SERVER_ENV) as url:
        yield url


class Incumbents:
    """Sessions that each do a cheap step every WORK_EVERY_S on a thread, from the moment they join (so none is
    ever idle for FULL_IDLE_S, however slowly the server fills); what closed them is kept."""

    def __init__(self) -> None:
        self.sockets: list[ClientConnection] = []
        self.answers: list[str] = []
        self.closed: list[str] = []
        self.stop = threading.Event()
        self.round = threading.Lock()
        self.thread = threading.Thread(target=self.work)

    def join(self, stack: contextlib.ExitStack, url: str, source: str, count: int) -> None:
        for _ in range(count):
            self.sockets += hold(stack, url, source, 1)

    def leave(self) -> None:
        """One incumbent closes its session (between two rounds)."""
        with self.round:
            self.sockets.pop().close()

    def work(self) -> None:
        while not self.stop.is_set():
            with self.round:
                self.step_each()
            self.stop.wait(WORK_EVERY_S)

    def step_each(self) -> None:
        for ws in list(self.sockets):
            try:
                ws.send(CHEAP_QUERY)
                reply = json.loads(ws.recv(timeout=30))
            except ConnectionClosed:
                reply = self.notice(ws)
            if reply["type"] == "observation":
                self.answers.append(reply["data"]["observation"]["status"])
            else:
                self.closed.append(reply["data"]["message"])
                self.sockets.remove(ws)

    @staticmethod
    def notice(ws: ClientConnection) -> dict:
        """What a socket closed while this thread slept was told before its close."""
        with contextlib.suppress(ConnectionClosed, TimeoutError):
            return json.loads(ws.recv(timeout=5))
        return {"type": "error", "data": {"message": "closed without a word"}}

    def __enter__(self) -> Incumbents:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def test_an_address_holding_more_than_a_newcomer_gives_it_a_place_at_once(full_server: str) -> None:
    """Two addresses hold every place and keep each busy: a newcomer is served at its first try, one of the
    holders' sessions is closed with a message saying why, and that address cannot take the place back."""
    with contextlib.ExitStack() as stack:
        with Incumbents() as incumbents:
            incumbents.join(stack, full_server, "127.0.0.2", 4)
            incumbents.join(stack, full_server, "127.0.0.3", 4)
            time.sleep(FULL_IDLE_S + 2)  # no idle clock frees anything: they all work
            assert not incumbents.closed
            started = time.monotonic()
            newcomer = stack.enter_context(open_session(full_server, "127.0.0.4"))
            assert refusal(newcomer) is None
            served_after_s = time.monotonic() - started
            with open_session(full_server, "127.0.0.2") as again, open_session(full_server, "127.0.0.3") as other:
                taken_back = [refusal(again), refusal(other)]
            time.sleep(2 * WORK_EVERY_S)
        assert served_after_s < 10, served_after_s
        assert len(incumbents.closed) == 1 and "its place went to" in incumbents.closed[0], incumbents.closed
        assert all(reply is not None and reply["data"]["code"] == "CAPACITY_REACHED" for reply in taken_back)
        assert set(incumbents.answers) == {"ok"}


def test_a_newcomer_among_equal_holders_is_served_when_its_hint_says(full_server: str) -> None:
    """Eight addresses hold one place each and keep it busy: a newcomer is told when to retry, and when it does it is
    served; another address asking in between is refused (the place is kept for the one that waited)."""
    with contextlib.ExitStack() as stack:
        with Incumbents() as incumbents:
            for host in range(10, 10 + CAPACITY):
                incumbents.join(stack, full_server, f"127.0.0.{host}", 1)
            with open_session(full_server, "127.0.0.30") as newcomer:
                refused = refusal(newcomer)
            assert refused is not None and refused["data"]["code"] == "CAPACITY_REACHED", refused
            hint = refused["data"]["retry_after_s"]
            assert 1 <= hint <= FULL_IDLE_S + 1 and f"Retry in about {hint} s." in refused["data"]["message"], refused
            time.sleep(hint)  # what the hint tells a client to do
            with open_session(full_server, "127.0.0.31") as latecomer:
                late = refusal(latecomer)
            served = stack.enter_context(open_session(full_server, "127.0.0.30"))
            assert refusal(served) is None
        assert late is not None and late["data"]["retry_after_s"] >= 1, late
        assert incumbents.closed and all("its place went to" in why for why in incumbents.closed), incumbents.closed
        assert set(incumbents.answers) == {"ok"}


def test_a_place_that_comes_free_otherwise_spares_the_session_chosen_to_make_room(own_server: str) -> None:
    """Among equal holders a newcomer is told when a place will be made for it; an incumbent leaves first, the
    newcomer takes that place, and the session that was to make room keeps its own past the hint."""
    with contextlib.ExitStack() as stack:
        with Incumbents() as incumbents:
            for host in range(40, 40 + CAPACITY):
                incumbents.join(stack, own_server, f"127.0.0.{host}", 1)
            with open_session(own_server, "127.0.0.50") as newcomer:
                refused = refusal(newcomer)
            assert refused is not None and refused["data"]["code"] == "CAPACITY_REACHED", refused
            incumbents.leave()
            served = stack.enter_context(open_session(own_server, "127.0.0.50"))
            deadline = time.monotonic() + 30  # the place of a session just closed is freed asynchronously
            while refusal(served) is not None:
                assert time.monotonic() < deadline, "the place that came free was not given to the newcomer"
                served = stack.enter_context(open_session(own_server, "127.0.0.50"))
                time.sleep(0.2)
            time.sleep(refused["data"]["retry_after_s"] + 2 * WORK_EVERY_S)
        assert not incumbents.closed, incumbents.closed
        assert set(incumbents.answers) == {"ok"}
