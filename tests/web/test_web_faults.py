"""The dashboard under hostile or heavy requests: malformed ``since``, two Host headers, a
burst of clients, methods it does not serve, and no files made beside the store."""

from __future__ import annotations

import http.client
import json
import socket
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest
from web_helpers import get

from batchlab.events import MetricRows
from batchlab.store import Store
from batchlab.web.server import CSP, make_server

SECURITY = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


def port_of(url: str) -> int:
    return int(url.rstrip("/").rsplit(":", 1)[1])


def raw(url: str, method: str, path: str, hosts: list[str]) -> http.client.HTTPResponse:
    """One request with exactly the Host headers given (http.client adds none)."""
    conn = http.client.HTTPConnection("127.0.0.1", port_of(url), timeout=30)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for host in hosts:
        conn.putheader("Host", host)
    conn.endheaders()
    resp = conn.getresponse()
    resp.body = resp.read()
    conn.close()
    return resp


@pytest.mark.parametrize("value", ["1e999", "NaN", "Infinity", "-Infinity", "true", '"7"'])
def test_malformed_since_values_are_ignored(dashboard, value):
    _, everything = get(dashboard + "api/curves?experiment=grid")
    since = "{" + ", ".join(f'"{rid}": {value}' for rid in everything["curves"]) + "}"
    status, body = get(dashboard + "api/curves?experiment=grid&since=" + quote(since))
    assert status == 200 and body == everything  # ignored: every row, as with no 'since'


@pytest.mark.parametrize("value", ["1e300", "1" + "0" * 30, "-1e300"])
def test_huge_since_steps_are_clamped(dashboard, value):
    _, everything = get(dashboard + "api/curves?experiment=grid")
    since = "{" + ", ".join(f'"{rid}": {value}' for rid in everything["curves"]) + "}"
    status, body = get(dashboard + "api/curves?experiment=grid&since=" + quote(since))
    assert status == 200
    if value.startswith("-"):  # before the first step: every row
        assert body == everything
    else:  # past every step: no rows
        assert all(not cols["step"] for c in body["curves"].values() for cols in c.values())


@pytest.mark.parametrize("since", ["[" * 5000 + "]" * 5000, '{"a": ' + "[" * 5000 + "]" * 5000 + "}",
                                   "{" * 5000, '{"a": 1'], ids=["nested", "nested-value", "open", "cut"])
def test_since_that_is_not_a_json_object_is_ignored(dashboard, since):
    _, everything = get(dashboard + "api/curves?experiment=grid")
    status, body = get(dashboard + "api/curves?experiment=grid&since=" + quote(since))
    assert status == 200 and body == everything


def test_two_host_headers_are_refused(dashboard):
    for hosts in (["127.0.0.1", "attacker.example"], ["attacker.example", "127.0.0.1"]):
        resp = raw(dashboard, "GET", "/api/experiments", hosts)
        assert resp.status == 400 and "more than one Host" in json.loads(resp.body)["error"]
    assert raw(dashboard, "GET", "/api/experiments", ["127.0.0.1"]).status == 200


@pytest.mark.parametrize("method", ["OPTIONS", "TRACE", "PROPFIND", "POST"])
def test_other_methods_get_405_with_the_security_headers(dashboard, method):
    resp = raw(dashboard, method, "/api/experiments", ["127.0.0.1"])
    assert resp.status == 405 and resp.getheader("Allow") == "GET, HEAD"
    assert "read-only" in json.loads(resp.body)["error"]
    assert {k: resp.getheader(k) for k in SECURITY} == SECURITY


def test_http_machinery_errors_get_the_security_headers(dashboard):
    """Errors http.server itself answers (here: a header line too long, before any handler
    runs) carry the headers too."""
    with socket.create_connection(("127.0.0.1", port_of(dashboard)), timeout=30) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n")
        reply = s.makefile("rb").read().decode()
    head, body = reply.split("\r\n\r\n", 1)
    assert head.startswith("HTTP/1.0 431") and f"Content-Security-Policy: {CSP}" in head
    assert "error" in json.loads(body)


def test_the_listen_backlog_holds_a_burst(grid_db):
    """60 clients connect before the server accepts any: the kernel queues them all (with
    http.server's backlog of 5 the 7th and later attempts are dropped and time out)."""
    server = make_server(grid_db, "127.0.0.1", 0)
    socks = []
    try:
        for _ in range(60):
            s = socket.socket()
            s.settimeout(5)
            s.connect(server.server_address)  # raises TimeoutError when the SYN is dropped
            socks.append(s)
    finally:
        for s in socks:
            s.close()
        server.server_close()


def test_2000_requests_50_at_a_time_all_answered(dashboard):
    def one(i: int) -> int | str:
        path = "api/runs?experiment=grid" if i % 4 == 0 else "static/charts.css"
        try:
            return get(dashboard + path)[0]
        except OSError as err:  # a timeout or a reset connection
            return repr(err)

    with ThreadPoolExecutor(50) as pool:
        statuses = list(pool.map(one, range(2000)))
    assert [s for s in statuses if s != 200] == []


def test_reading_makes_no_files_beside_the_store(dashboard, grid_db):
    for path in ("", "api/experiments", "api/runs?experiment=grid", "api/curves?experiment=grid",
                 "api/summary?experiment=grid"):
        assert get(dashboard + path)[0] == 200
    assert sorted(p.name for p in grid_db.parent.iterdir()) == ["grid.db"]


def test_a_live_writer_is_still_seen(dashboard, grid_db):
    """While a sweep holds the store open its rows sit in the -wal file: the dashboard reads
    them there (not from the main file alone)."""
    _, body = get(dashboard + "api/curves?experiment=grid")
    rid = next(iter(body["curves"]))
    last = body["curves"][rid]["train_loss"]["step"][-1]
    with Store(grid_db) as st:
        st.conn.execute("PRAGMA wal_autocheckpoint=0")  # keep the rows in the -wal file
        st.record(MetricRows(rid, [("train_loss", last + 1, 0.5, 0, 0, 0)], last + 1))
        assert (grid_db.parent / "grid.db-wal").stat().st_size > 0
        _, body = get(dashboard + "api/curves?experiment=grid")
        assert body["curves"][rid]["train_loss"]["step"][-1] == last + 1


def test_a_bug_in_an_endpoint_is_a_500_answer_not_a_dropped_connection(dashboard, monkeypatch):
    from batchlab.web import payload

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(payload, "curves", broken)
    resp = raw(dashboard, "GET", "/api/curves?experiment=grid", ["127.0.0.1"])
    assert resp.status == 500 and "RuntimeError: a bug" in json.loads(resp.body)["error"]
    assert {k: resp.getheader(k) for k in SECURITY} == SECURITY
