"""``python -m bench.serve VARIANT PORT``: one uvicorn worker on 127.0.0.1 serving ``bench.apps.build(VARIANT)``."""

from __future__ import annotations

import sys

import uvicorn

from bench.apps import build


def main(variant: str, port: int) -> None:
    app, access_log = build(variant)
    # As `python -m service` runs it: uvicorn installs no plain-text handlers of its own.
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=access_log, server_header=False)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
