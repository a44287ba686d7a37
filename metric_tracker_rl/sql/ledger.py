"""Where a statement step's wall time goes in the server, summed over the process's statements.

A statement costs the engine milliseconds of CPU, and a step that runs it can take seconds under load; an operator
(and the lab's load benchmark) needs to see where the difference goes. Each phase is a sum of seconds over every
statement step the server answered since it started:

- `sandbox_open_s`: an episode's first statement builds its tables;
- `gate_wait_s`: waiting for the client's turn at the SQL workers (`sql.fair_gate`);
- `worker_wait_s`: a turn granted, waiting for a worker to be free or started (one being replaced, say);
- `send_s`: handing the statement, and its episode's tables the first time, down the worker's pipe;
- `engine_cpu_s`: the CPU the worker spent on the statement;
- `reply_wait_s`: from the statement sent until its reply, beyond that CPU (the worker waiting for a core, the pipe);
- `rerun_s`: attempts stopped before their end: demoted off the last worker (then asked again), or their step
  given up;
- `step_s`: the whole step, from its session's turn to its observation; what the phases do not explain is the
  event loop's own work (reading the reply, rendering the observation) and its waits for other tasks.

Counts go beside the seconds: statements stopped in their worker for a caller that gave up (`stopped`), workers
killed or lost and started again (`replaced`), turns demoted off the last worker (`demotions`). The figures are
aggregates over every client and say nothing of an episode, but read before and after another client's step they
would show that statement and its CPU time: `GET /ready` reports them only to the server's own machine.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass


@dataclass
class StatementLedger:
    statements: int = 0
    attempts: int = 0
    reruns: int = 0
    stopped: int = 0
    replaced: int = 0
    demotions: int = 0
    step_s: float = 0.0
    sandbox_open_s: float = 0.0
    gate_wait_s: float = 0.0
    worker_wait_s: float = 0.0
    send_s: float = 0.0
    engine_cpu_s: float = 0.0
    reply_wait_s: float = 0.0
    rerun_s: float = 0.0


_LEDGER = StatementLedger()
_LOCK = threading.Lock()  # the pool's threaded path records from worker threads too


def record(**amounts: float) -> None:
    """Add `amounts` (fields of StatementLedger) to the process's ledger."""
    with _LOCK:
        for name, amount in amounts.items():
            setattr(_LEDGER, name, getattr(_LEDGER, name) + amount)


def snapshot() -> dict[str, float]:
    """The ledger's sums so far, seconds rounded to the millisecond."""
    with _LOCK:
        return {name: round(value, 3) if isinstance(value, float) else value for name, value in asdict(_LEDGER).items()}


def record_attempt(waited_s: float, sent_s: float, replied_s: float, cpu_s: float | None) -> None:
    """One attempt that got its worker's reply: `replied_s` from sent to reply, `cpu_s` the worker's CPU for it
    (None where the system does not tell: the wait is then counted whole)."""
    cpu = max(0.0, min(cpu_s, replied_s)) if cpu_s is not None else 0.0
    record(attempts=1, worker_wait_s=waited_s, send_s=sent_s, engine_cpu_s=cpu, reply_wait_s=replied_s - cpu)
