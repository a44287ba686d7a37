"""What reading a message may cost: its structure bounded before it is parsed, and each client's parse work
budgeted, for WebSocket frames and HTTP bodies alike.

A message's size does not bound its cost. A 700 KB frame of 60,000 empty objects parses in milliseconds, but
validating it as a submission builds an error for every missing field of every "row": most of a second of the
event loop, during which no other client is answered. So before anything parses a message:

- its structure is counted, at the speed of `str.count`: more than MAX_JSON_ELEMENTS values, or nesting deeper
  than MAX_JSON_DEPTH, and it is refused with a message that says so (commas and brackets inside strings are text,
  not structure: they are discounted when the fast count is over the limit); so is a run of more digits than
  Python converts to an integer (its parser raises an error that OpenEnv's session loop does not expect);
- its cost is estimated from its size and its values, and charged to its client (its address group, as the
  session cap counts clients). A client in debt is not read from until the debt is paid back at PARSE_BUDGET_RATE
  seconds of work per second: its own next frame or body waits, and nobody else's does.

Every check here is linear in the message's size: strings are found with `bytes.replace` and `split`, never with a
regex that backtracks (a pattern for a JSON string rescans the rest of the text from every unclosed quote, so 64 KB
of escaped quotes took seconds). No message is free: each costs MESSAGE_COST_S and its bytes and values from the
first, so a flood of small messages is paced like one large one. An agent's step (a few hundred bytes, a few values)
costs well under a tenth of a millisecond; a full 200-row report (about 3,000 values) a few hundredths of a second.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from dataclasses import dataclass

# Most values (counted as separators and opening brackets) a message may hold. A full 200-row report holds about
# 3,000; the debugger sends its report table as a list of rows, about as many.
MAX_JSON_ELEMENTS = 8192
# Deepest JSON nesting accepted in a message; a valid message nests about 6 levels deep.
MAX_JSON_DEPTH = 32
# The estimated event-loop time a message costs, counted from its first byte and value: per message (framing,
# routing, the reply), per value (the worst case measured, a submission of invalid rows, costs about 10 us a value)
# and per byte (receiving, decoding and counting).
MESSAGE_COST_S = 10e-6
ELEMENT_COST_S = 10e-6
BYTE_COST_S = 10e-9
# Each client's budget of parse work: seconds of work per second, and the most it may spend at once. An agent's
# steps back to back (about 70 us each) stay within it at several thousand a second.
PARSE_BUDGET_RATE = 0.2
PARSE_BUDGET_BURST_S = 0.5
# Clients whose budget is full are forgotten once this many are known.
REMEMBERED_CLIENTS = 4096

# Python refuses to convert longer digit strings to an int (`sys.get_int_max_str_digits`); no SQL statement
# (4,000 characters at most) holds one.
_LONG_NUMBER = b"0" * (sys.get_int_max_str_digits() + 1)
_DIGITS_AS_ZERO = bytes(ord("0") if ord("0") <= byte <= ord("9") else ord(" ") for byte in range(256))
_BRACKET = re.compile(r"[\[\]{}]")  # one character: nothing to backtrack


@dataclass(frozen=True)
class StructureProblem:
    """Why a message is refused unparsed; `too_large` (too many values) or too deep."""

    message: str
    too_large: bool


def bracket_count(text: str | bytes) -> int:
    """Opening brackets in a JSON text, those in strings too (an upper bound of its depth)."""
    if isinstance(text, bytes):
        return text.count(b"{") + text.count(b"[")
    return text.count("{") + text.count("[")


def value_count(text: str | bytes) -> int:
    """An upper bound of the values in a JSON text, counted at C speed (separators and brackets in strings too)."""
    return bracket_count(text) + (text.count(b",") if isinstance(text, bytes) else text.count(","))


def outside_strings(text: str | bytes) -> str:
    """`text` without the contents of its JSON strings, in linear time: escaped backslashes and then escaped quotes
    are dropped (left to right, as JSON pairs them), and what lies between the remaining quotes is a string. A
    backslash outside a string is invalid JSON, which the parser refuses at that point whatever follows."""
    if isinstance(text, bytes):  # UTF-8 never holds the bytes of a quote or a backslash inside another character
        data = text.replace(b"\\\\", b"").replace(b'\\"', b"")
        return b"".join(data.split(b'"')[0::2]).decode("utf-8", "replace")
    unescaped = text.replace("\\\\", "").replace('\\"', "")
    return "".join(unescaped.split('"')[0::2])


def nesting_depth(structure: str) -> int:
    """The deepest nesting of brackets in `structure` (text outside strings, at most MAX_JSON_ELEMENTS brackets)."""
    depth = deepest = 0
    for bracket in _BRACKET.findall(structure):
        depth = depth + 1 if bracket in "[{" else depth - 1
        deepest = max(deepest, depth)
    return deepest


def has_long_number(text: str | bytes) -> bool:
    """Whether `text` holds a run of digits too long for Python's int conversion (about 1.5 ms a megabyte)."""
    if len(text) < len(_LONG_NUMBER):
        return False
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return _LONG_NUMBER in data.translate(_DIGITS_AS_ZERO)


def structure_problem(text: str | bytes) -> StructureProblem | None:
    """Why `text` must not be parsed (too many values, nested too deeply, a number too long), or None. Never
    parses it."""
    if has_long_number(text):
        return StructureProblem(f"Message holds a number of more than {len(_LONG_NUMBER) - 1} digits.", too_large=False)
    if value_count(text) <= MAX_JSON_ELEMENTS and bracket_count(text) <= MAX_JSON_DEPTH:
        return None
    structure = outside_strings(text)
    values = value_count(structure)
    if values > MAX_JSON_ELEMENTS:
        return StructureProblem(
            f"Message holds too many JSON values (about {values}; at most {MAX_JSON_ELEMENTS}): "
            "send fewer rows or arguments.",
            too_large=True,
        )
    if nesting_depth(structure) > MAX_JSON_DEPTH:
        return StructureProblem(f"Message nests too deeply (at most {MAX_JSON_DEPTH} levels).", too_large=False)
    return None


def parse_cost_s(text: str | bytes) -> float:
    """The event-loop time reading `text` may cost, as charged to its client: never nothing."""
    values = min(value_count(text), MAX_JSON_ELEMENTS)  # a message over the limit is refused unparsed
    return MESSAGE_COST_S + values * ELEMENT_COST_S + len(text) * BYTE_COST_S


class ParseBudget:
    """Each client's parse work as a token bucket in seconds: `charge` after reading a message, `wait` before
    reading the next one (one process's clients; each worker process has its own)."""

    def __init__(self, rate: float = PARSE_BUDGET_RATE, burst_s: float = PARSE_BUDGET_BURST_S) -> None:
        self.rate, self.burst_s = rate, burst_s
        self._balance: dict[str, tuple[float, float]] = {}  # client -> (seconds of work left, as of when)

    def balance(self, client: str, now: float) -> float:
        left, at = self._balance.get(client, (self.burst_s, now))
        return min(self.burst_s, left + (now - at) * self.rate)

    def charge(self, client: str, cost_s: float) -> None:
        if cost_s <= 0:
            return
        now = time.monotonic()
        self._balance[client] = (self.balance(client, now) - cost_s, now)
        if len(self._balance) > REMEMBERED_CLIENTS:
            self._balance = {
                name: entry for name, entry in self._balance.items() if self.balance(name, now) < self.burst_s
            }

    def delay_s(self, client: str) -> float:
        """How long `client` must wait before its next message is read (0 when it is not in debt)."""
        if client not in self._balance:
            return 0.0
        return max(-self.balance(client, time.monotonic()), 0.0) / self.rate

    async def wait(self, client: str) -> None:
        delay = self.delay_s(client)
        while delay > 0:
            await asyncio.sleep(delay)
            delay = self.delay_s(client)


PARSE_BUDGET = ParseBudget()
