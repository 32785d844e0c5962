"""File mode: one file per process named by a stable slot, midnight rotation, retention over the whole set.

``names`` (file names, parsing, listing) is light and shared with the ``logs`` command; the writer
(``FileSink``, with ``fcntl`` and ``multiprocessing``) loads only when it is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from service.logs.files.names import LogFile, log_files, parse_log_name

if TYPE_CHECKING:
    from service.logs.files.directory import check_log_dir
    from service.logs.files.sink import FileSink

__all__ = ["FileSink", "LogFile", "check_log_dir", "log_files", "parse_log_name"]


def __getattr__(name: str) -> Any:
    if name == "FileSink":
        from service.logs.files.sink import FileSink

        return FileSink
    if name == "check_log_dir":
        from service.logs.files.directory import check_log_dir

        return check_log_dir
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
