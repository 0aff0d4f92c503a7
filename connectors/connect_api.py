"""A small client for Kafka Connect's REST API: validate, idempotent PUT, status, delete."""
from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx


class ConnectError(RuntimeError):
    pass


@dataclass
class ConnectorState:
    name: str
    connector: str
    tasks: list[str]
    trace: str | None = None

    @property
    def running(self) -> bool:
        return self.connector == "RUNNING" and bool(self.tasks) and all(t == "RUNNING" for t in self.tasks)

    @property
    def failed(self) -> bool:
        return self.connector == "FAILED" or "FAILED" in self.tasks


def _rebalancing(resp: httpx.Response) -> bool:
    """Connect answers 409, or 500 'rebalance is expected', while its workers rebalance (just
    after start or a config change): the request is fine, only early. The transport's response
    is still a stream: a 500's body is read here (and kept for the caller) to tell which."""
    if resp.status_code == 500:
        resp.read()
        return "rebalance" in resp.text.lower()
    return resp.status_code == 409


class _RetryingTransport(httpx.HTTPTransport):
    """Waits out a rebalance; with several workers, a request that cannot reach one goes to the
    next (any worker answers for the cluster and forwards what only the leader may do)."""

    def __init__(self, patience: float, alternates: list[httpx.URL] | None = None) -> None:
        super().__init__()
        self.patience = patience
        self.alternates = alternates or []

    def _send(self, request: httpx.Request) -> httpx.Response:
        try:
            return super().handle_request(request)
        except httpx.ConnectError:
            for alt in self.alternates:
                if (alt.host, alt.port) == (request.url.host, request.url.port):
                    continue
                request.url = request.url.copy_with(host=alt.host, port=alt.port)
                try:
                    return super().handle_request(request)
                except httpx.ConnectError:
                    continue
            raise

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        deadline = time.monotonic() + self.patience
        while True:
            resp = self._send(request)
            if not _rebalancing(resp) or time.monotonic() > deadline:
                return resp
            resp.read()
            resp.close()
            time.sleep(0.5)


class ConnectClient:
    def __init__(self, url: str, timeout: float = 60.0, rebalance_patience: float = 60.0) -> None:
        """`url`: one worker's, or every worker's comma-separated (CONNECT_URLS): the first that answers serves."""
        addresses = [u.strip().rstrip("/") for u in url.split(",") if u.strip()]
        self.url = addresses[0]
        transport = _RetryingTransport(rebalance_patience, [httpx.URL(u) for u in addresses[1:]])
        self.http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport)

    def close(self) -> None:
        self.http.close()

    def _check(self, resp: httpx.Response) -> httpx.Response:
        if resp.status_code >= 400:
            raise ConnectError(f"{resp.request.method} {resp.request.url.path}: HTTP {resp.status_code}: {resp.text}")
        return resp

    def validate(self, name: str, config: dict[str, str]) -> list[str]:
        """Connect's own validation (the connector checks the database too); one message per problem."""
        plugin = config["connector.class"].rsplit(".", 1)[-1]
        body = {**config, "name": name}
        data = self._check(self.http.put(f"/connector-plugins/{plugin}/config/validate", json=body)).json()
        errors: list[str] = []
        for item in data.get("configs", []):
            value = item.get("value") or {}
            errors.extend(f"{name}: {value.get('name')}: {msg}" for msg in value.get("errors", []))
        if data.get("error_count", 0) and not errors:
            errors.append(f"{name}: Connect reported {data['error_count']} error(s) without messages")
        return errors

    def config(self, name: str) -> dict[str, str] | None:
        resp = self.http.get(f"/connectors/{name}/config")
        if resp.status_code == 404:
            return None
        return self._check(resp).json()

    def put_config(self, name: str, config: dict[str, str]) -> bool:
        """PUT creates or updates; returns True when created."""
        return self._check(self.http.put(f"/connectors/{name}/config", json=config)).status_code == 201

    def names(self) -> list[str]:
        return sorted(self._check(self.http.get("/connectors")).json())

    def status(self, name: str) -> ConnectorState:
        data = self._check(self.http.get(f"/connectors/{name}/status")).json()
        tasks = data.get("tasks", [])
        trace = data["connector"].get("trace") or next((t.get("trace") for t in tasks if t.get("trace")), None)
        return ConnectorState(name, data["connector"]["state"], [t["state"] for t in tasks], trace)

    def tasks_carry(self, name: str, config: dict[str, str]) -> bool:
        """Whether every task already runs with `config` (after an update, until the herder has
        reconfigured them, the status still describes the old tasks)."""
        resp = self.http.get(f"/connectors/{name}/tasks")
        if resp.status_code != 200:
            return False
        tasks = resp.json()
        return bool(tasks) and all(all(t["config"].get(k) == v for k, v in config.items()) for t in tasks)

    def offset(self, name: str) -> dict | None:
        """The connector's stored source offset (its only partition), or None (none yet, or no connector)."""
        resp = self.http.get(f"/connectors/{name}/offsets")
        if resp.status_code == 404:
            return None
        offsets = self._check(resp).json().get("offsets") or []
        return offsets[0].get("offset") if offsets else None

    def restart_failed(self, name: str) -> None:
        self._check(self.http.post(f"/connectors/{name}/restart", params={"includeTasks": "true", "onlyFailed": "true"}))

    def delete(self, name: str) -> None:
        resp = self.http.delete(f"/connectors/{name}")
        if resp.status_code != 404:
            self._check(resp)

    def wait_running(self, names: list[str], timeout: float = 120.0) -> list[ConnectorState]:
        deadline = time.monotonic() + timeout
        while True:
            states = []
            for name in names:
                try:
                    states.append(self.status(name))
                except (ConnectError, KeyError, httpx.HTTPError):  # 404 or partial status right after a PUT
                    states.append(ConnectorState(name, "UNASSIGNED", []))
            failed = [s for s in states if s.failed]
            if failed:
                raise ConnectError("; ".join(f"{s.name} FAILED: {(s.trace or '').splitlines()[0] if s.trace else ''}"
                                             for s in failed))
            if all(s.running for s in states):
                return states
            if time.monotonic() > deadline:
                seen = ", ".join(f"{s.name}={s.connector}/{s.tasks}" for s in states)
                raise ConnectError(f"connectors not RUNNING after {timeout:.0f}s: {seen}")
            time.sleep(0.5)


def cluster_url(env: Mapping[str, str]) -> str:
    """Every worker's address (`make env`'s CONNECT_URLS) for a client that should survive one
    worker's death; CONNECT_URL alone when it was pointed elsewhere (a stack of one's own)."""
    every = env.get("CONNECT_URLS", "")
    return every if env["CONNECT_URL"] in every.split(",") else env["CONNECT_URL"]
