from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.jobs.support import RedisServer, redis_server_binary


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server per test module (flushed by each test that needs a clean broker)."""
    binary = redis_server_binary()
    if binary is None:
        pytest.skip("redis-server is not installed and cannot be installed here (not root or no apt-get)")
    server = RedisServer(binary, Path(tmp_path_factory.mktemp("redis"))).start()
    try:
        yield server
    finally:
        server.stop()
