"""Property-based fuzzing of the HTTP API from its own OpenAPI document (schemathesis).

Every operation of /openapi.json, /mcp included (OpenEnv serves it and `openenv validate` calls it), gets
schema-valid and schema-violating requests. schemathesis's default checks apply (no 5xx, documented status
codes and content types, responses that match the documented schemas, schema-valid requests accepted)
except `negative_data_rejection`: pydantic's lax mode, in OpenEnv's request models and in ours, accepts
some schema-violating values by coercing them (`true` -> 1, `"3"` -> 3.0), which is harmless and by
design. Such requests are still checked for everything else, 5xx included. The schema is loaded from a
live server, so the document under test is the one clients see.
"""

from __future__ import annotations

from collections import Counter

import pytest
from conftest import FUZZ_GROUP
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from reliability_support import record

schemathesis = pytest.importorskip("schemathesis", reason=FUZZ_GROUP)

from schemathesis.checks import negative_data_rejection, positive_data_acceptance  # noqa: E402
from schemathesis.core.failures import FailureGroup  # noqa: E402
from schemathesis.generation.modes import GenerationMode  # noqa: E402

pytestmark = pytest.mark.slow  # starts server processes or a browser

MAX_EXAMPLES = 25


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_every_operation_conforms_and_never_fails(server_url: str, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(f"{server_url}/openapi.json")
    failures: list[str] = []
    statuses: Counter[str] = Counter()
    operations = []
    for result in schema.get_all_operations():
        operation = result.ok()
        operations.append(operation.label)

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            response = case.call()
            statuses[f"{response.status_code // 100}xx"] += 1
            # A row's entity_name must be one of its entity_type's (the schema lists both, but JSON Schema as
            # generated cannot tie one field's values to another's), so a schema-valid row may be refused with 422.
            case.validate_response(response, excluded_checks=[negative_data_rejection, positive_data_acceptance])

        try:
            check()
        except Unsatisfiable:
            # No schema-violating request exists for an operation without parameters or body.
            assert mode is GenerationMode.NEGATIVE, operation.label
        except (Exception, FailureGroup) as exc:  # report every operation's failure together
            failures.append(f"{operation.label}: {exc}")
    record(
        f"http_fuzz_{mode}",
        {
            "operations": operations,
            "requests": sum(statuses.values()),
            "status_classes": dict(statuses),
            "failures": len(failures),
        },
    )
    assert "POST /step" in operations and "POST /reset" in operations
    assert statuses["5xx"] == 0
    assert not failures, "\n\n".join(failures)
