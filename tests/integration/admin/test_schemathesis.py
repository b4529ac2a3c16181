"""schemathesis against the served /openapi.json, over real HTTP with real tokens (D21).

Every operation, positive and negative cases, bounded to a few examples each:
responses must match the document (status, content type, schema with unknown
fields forbidden), authless calls must be 401, bad input must be refused. No
5xx is allowed except the documented 503 of a supervisor that is not running
here (and /readyz saying so), which these tests expect.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from mmsvc.processes.admin import openapi
from tests.integration.admin.conftest import ADMIN, Admin

pytestmark = pytest.mark.integration

EXPECTED_503 = {"SUPERVISOR_UNAVAILABLE"}
MAX_EXAMPLES = 8
MAX_EXAMPLES_LIVE = 4


# The operations, known at collection time from the document the app serves
# (test_openapi checks that the served document is this one); negative cases
# only where there is an input to break.
CASES = sorted(
    (method.upper(), path, mode)
    for path, operations in openapi.document()["paths"].items()
    for method, operation in operations.items()
    for mode in GenerationMode
    if mode is GenerationMode.POSITIVE or "parameters" in operation or "requestBody" in operation
)


@pytest.fixture(scope="module")
def admin_schema(admin: Admin) -> Any:
    """The document as served, loaded by schemathesis over HTTP."""
    return schemathesis.openapi.from_url(f"{admin.url}/openapi.json")


def only_the_documented_unavailability(_ctx: Any, response: Any, case: Any) -> None:
    """A 5xx only where the supervisor's absence is the documented reason."""
    if response.status_code < 500:
        return
    if case.path == "/readyz" and response.status_code == 503:
        return
    body = response.json()
    code = body.get("error", {}).get("code") if isinstance(body, dict) else None
    answered = f"{case.method} {case.path} answered {response.status_code}: {response.text[:300]}"
    assert response.status_code == 503, answered
    assert code in EXPECTED_503, answered


def fuzz(operation: Any, mode: GenerationMode, examples: int, *, supervisor_up: bool) -> None:
    """Draw `examples` cases of `operation` and validate each answer against the document."""
    excluded = [] if supervisor_up else [not_a_server_error]
    extra = [] if supervisor_up else [only_the_documented_unavailability]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        case.call_and_validate(
            headers={"Authorization": f"Bearer {ADMIN}"},
            excluded_checks=excluded,
            additional_checks=extra,
            timeout=30,
        )

    check()


# schemathesis.pytest.from_fixture cannot run under pytest 9 (it sets the
# removed Node._nodeid), so each operation's cases are drawn here with
# hypothesis from schemathesis's own strategies, positive and negative.
@pytest.mark.parametrize(
    ("method", "path", "mode"), CASES, ids=[f"{m} {p} {g.value}" for m, p, g in CASES]
)
def test_api_conforms_to_its_document(
    admin_schema: Any, method: str, path: str, mode: GenerationMode
) -> None:
    fuzz(admin_schema[path][method], mode, MAX_EXAMPLES, supervisor_up=False)


@pytest.mark.slow
@pytest.mark.usefixtures("supervisor")
def test_api_conforms_with_the_supervisor_and_workers_running(admin_schema: Any) -> None:
    """No 5xx at all once the supervisor runs: its and the workers' answers fit the document."""
    failures = []
    for method, path, mode in CASES:
        try:
            fuzz(admin_schema[path][method], mode, MAX_EXAMPLES_LIVE, supervisor_up=True)
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure, not the first
            failures.append(f"{method} {path} {mode.value}: {exc}")
    assert not failures, "\n\n".join(failures)
