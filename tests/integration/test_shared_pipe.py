"""Several processes sharing one stdout pipe (uvicorn and gunicorn workers, a container's stdout): a slow
reader makes big batches block half-written, and still no process's line is torn by another's."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.support import parse_json_lines

WRITER = """
import logging, sys
from service import setup_logging
setup_logging()
log = logging.getLogger("writer")
pad = "x" * 300
for i in range(6000):
    log.info("%s line %d %s", sys.argv[1], i, pad)
"""


def test_workers_sharing_a_pipe_never_tear_a_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOG_")}
    env["LOG_SHUTDOWN_TIMEOUT"] = "60"  # the slow reader must not make the exit give lines up
    read_fd, write_fd = os.pipe()
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, f"w{n}"], stdout=write_fd, cwd=tmp_path, env=env)
        for n in range(3)
    ]
    os.close(write_fd)
    chunks: list[bytes] = []
    with os.fdopen(read_fd, "rb", buffering=0) as reader:
        while chunk := reader.read(1000):  # a slow reader: writers block in the middle of their batches
            chunks.append(chunk)
            time.sleep(0.0005)
    for writer in writers:
        assert writer.wait(60) == 0
    records = parse_json_lines(b"".join(chunks))  # fails on the first torn line
    for n in range(3):
        mine = [r["message"].split()[2] for r in records if r["message"].startswith(f"w{n} ")]
        assert mine == [str(i) for i in range(6000)]
