"""No input makes `embassy-watch serve` fail (5xx): every route, every parameter, any value.

The routes and their parameters are read from the application itself, so a route added
later is covered without touching this file. Values are arbitrary text (NUL, control
characters and surrogates included), arbitrary bytes (invalid UTF-8), and numbers of any
size and sign, all percent-encoded into the path or the query string.
"""

from __future__ import annotations

import http.client
import json
import re
from dataclasses import dataclass
from urllib.parse import quote_from_bytes, urlsplit

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.status import Health
from monitor.web.site import create_app
from tests.served import Served

EXAMPLES_PER_ROUTE = 40
PATH_PARAMETER = re.compile(r"{(\w+)")
ONE_LINE_ERROR = re.compile(r'<p class="error">[^\n<]+</p>')
# Values that reach past validation into the code behind it, mixed in with arbitrary ones.
NEAR_MISSES = (
    "1", "2", "0", "-1", "2147483647", "2147483648", "9223372036854775808",
    "99999999999999999999", "1e400", "csv", "jsonl", "warc.gz", "replica", "changed", "side",
    "2021-03-31T07:35:12Z", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59",
    "项", "\x00", "%", "_", "\\",
)  # fmt: skip


@dataclass(frozen=True)
class RouteShape:
    path: str  # with {name} for each path parameter
    path_parameters: tuple[str, ...]
    query_parameters: tuple[str, ...]


def routes_of_the_app(served: Served) -> list[RouteShape]:
    with served.ew.archive() as archive:
        app = create_app(archive, health=_not_asked)  # only its route table is read
    found = []
    for context in iter_route_contexts(app.routes):
        path = context.path_format or ""
        route = context.original_route
        query = route.dependant.query_params if isinstance(route, APIRoute) else []
        found.append(
            RouteShape(path, tuple(PATH_PARAMETER.findall(path)), tuple(p.alias for p in query))
        )
    return found


def _not_asked() -> Health:
    raise AssertionError("the route table needs no health")


def any_value() -> st.SearchStrategy[bytes]:
    text = st.text(st.characters(exclude_categories=()))  # surrogates too
    return st.one_of(
        st.integers().map(lambda n: str(n).encode()),
        text.map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.binary(),
        st.sampled_from(NEAR_MISSES).map(lambda t: t.encode()),
    )


def requests_for(route: RouteShape) -> st.SearchStrategy[str]:
    """A request target for the route: every path parameter, any of its query parameters."""
    path_values = st.tuples(*(any_value() for _ in route.path_parameters))
    query = (
        st.lists(st.tuples(st.sampled_from(route.query_parameters), any_value()), max_size=4)
        if route.query_parameters
        else st.just([])
    )

    def target(values: tuple[bytes, ...], pairs: list[tuple[str, bytes]]) -> str:
        path = route.path.format(**{
            name: quote_from_bytes(value, safe="")
            for name, value in zip(route.path_parameters, values, strict=True)
        })  # fmt: skip
        if not pairs:
            return path
        return path + "?" + "&".join(f"{k}={quote_from_bytes(v, safe='')}" for k, v in pairs)

    return st.builds(target, path_values, query)


def answer_to(served: Served, target: str) -> tuple[int, str, bytes]:
    """Status, content type and body; the target is sent exactly as given."""
    base = urlsplit(served.base)
    connection = http.client.HTTPConnection(base.hostname or "", base.port, timeout=30)
    try:
        connection.request("GET", target)
        response = connection.getresponse()
        return response.status, response.headers["Content-Type"] or "", response.read()
    finally:
        connection.close()


def says_why_in_one_line(content_type: str, body: bytes) -> bool:
    if content_type.startswith("application/json"):
        return "detail" in json.loads(body)
    if content_type.startswith("text/html"):
        return ONE_LINE_ERROR.search(body.decode()) is not None
    return False


def test_the_routes_are_all_found(served: Served) -> None:
    paths = {route.path for route in routes_of_the_app(served)}
    for expected in (
        "/api/statements/{statement_id}/diff",
        "/statements/{statement_id}/at",
        "/feeds/sites/{site}.atom",
        "/export/statements/{statement_id}.{suffix}",
        "/static/{path}",
    ):
        assert expected in paths


def test_no_request_makes_the_server_fail(served: Served) -> None:
    failures: list[str] = []
    for route in routes_of_the_app(served):

        @settings(
            max_examples=EXAMPLES_PER_ROUTE,
            database=None,
            derandomize=True,  # the same requests every run: a failure is reproducible
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(target=requests_for(route))
        def answers_without_failing(target: str) -> None:
            status, content_type, body = answer_to(served, target)
            assert status < 500, f"{status} for GET {target}"
            if status >= 400:
                assert says_why_in_one_line(content_type, body), f"{status} for GET {target}"

        try:
            answers_without_failing()
        except AssertionError as failure:
            failures.append(str(failure).splitlines()[0])
    assert failures == []


@pytest.mark.parametrize(
    ("target", "fragment"),
    [
        # an id beyond what any archive holds
        ("/statements/99999999999999999999", "statement_id: Input should be less than or equal"),
        ("/api/statements/99999999999999999999", "less than or equal to 2147483647"),
        ("/api/statements/2147483648/revisions/1", "less than or equal to 2147483647"),
        ("/api/statements/1/revisions/99999999999999999999", "less than or equal"),
        ("/feeds/statements/99999999999999999999.atom", "less than or equal"),
        ("/export/statements/99999999999999999999.csv", "less than or equal"),
        ("/api/changes?statement_id=99999999999999999999", "less than or equal"),
        ("/changes?before=99999999999999999999", "before: Input should be less than or equal"),
        ("/search?q=x&page=99999999999999999999", "page: Input should be less than or equal"),
        ("/api/search?q=x&offset=99999999999999999999", "less than or equal"),
        # NUL, which PostgreSQL refuses in text
        ("/api/search?q=%00", "must not contain the NUL character"),
        ("/search?q=%00", "q: Value error, must not contain the NUL character"),
        ("/api/statements?site=%00", "must not contain the NUL character"),
        ("/feeds/changes.atom?site=%00", "must not contain the NUL character"),
        ("/feeds/sites/%00.atom", "must not contain the NUL character"),
        # a time that has no UTC within the years 1 to 9999
        ("/api/statements/1?at=9999-12-31T23:59:59-23:59", "years 1 to 9999"),
        ("/statements/1/at?time=0001-01-01T00:00:00%2B23:59", "years 1 to 9999"),
    ],
)
def test_what_failed_before_is_refused_in_one_line(
    served: Served, target: str, fragment: str
) -> None:
    status, headers, body = served.fetch(target)
    text = body.decode()
    assert status == 422, (target, status, text[:300])
    assert fragment in text
    if headers["Content-Type"].startswith("text/html"):
        (message,) = [line for line in text.splitlines() if 'class="error"' in line]
        assert fragment in message  # the whole reason on one line


@pytest.mark.parametrize(
    "target",
    [
        "/feeds/changes.atom?site=%07%1B%0D",  # control characters in a feed's title
        "/feeds/sites/%C2%85%EF%BF%BE.atom",  # NEL and U+FFFE, which XML cannot carry
        "/api/search?q=%FF%FE",  # invalid UTF-8
        "/search?q=%ED%A0%80",  # a surrogate, encoded
        "/?tag=%FF",
    ],
)
def test_odd_text_in_a_query_gets_an_answer(served: Served, target: str) -> None:
    status, _, body = served.fetch(target)
    assert status == 200, (target, status, body[:300])


def test_the_command_line_answers_ids_beyond_any_column_in_one_line(served: Served) -> None:
    huge = "99999999999999999999"  # past 64 bits; INTEGER columns end at 2**31 - 1
    shown = served.ew.run("show", huge, expect=1)
    assert shown.stderr.startswith(f"embassy-watch: no statement matches '{huge}'")
    assert len(shown.stderr.splitlines()) == 1
    for command in (["show", "1", "--revision", huge], ["diff", "1", "--from", huge]):
        refused = served.ew.run(*command, expect=2)
        assert "Traceback" not in refused.stderr and huge in refused.stderr
