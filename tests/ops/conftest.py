"""Ops fixtures: a port nothing listens on, and a live RQ worker registration."""

import socket

import pytest
from redis import Redis
from rq import Worker

from app.jobs import get_queue


@pytest.fixture
def closed_port() -> int:
    """A loopback port that was just free: connecting to it is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def redis_down(app, monkeypatch, closed_port):
    """The app's Redis client (made as app.jobs.init_redis makes it) points at a closed port."""
    dead = Redis.from_url(
        f"redis://127.0.0.1:{closed_port}/0", socket_connect_timeout=2, socket_timeout=5
    )
    monkeypatch.setitem(app.extensions, "redis", dead)
    return dead


@pytest.fixture
def live_worker(redis_conn):
    """An RQ worker registered as a real one registers itself (its key refreshed by heartbeats)."""
    worker = Worker([get_queue("default")], connection=redis_conn, name="ops-test-worker")
    worker.register_birth()
    yield worker
    worker.register_death()
