"""The log directory: the startup check that a file can be created in it, and how its errors read."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

from service.settings import ENV_PREFIX, SettingsError

__all__ = ["check_log_dir", "log_dir_error", "os_error_text", "probe_log_dir"]


def os_error_text(exc: OSError) -> str:
    """``Permission denied [EACCES]``: the reason and the errno's name, which people search for."""
    reason = exc.strerror or type(exc).__name__
    if exc.errno is not None:
        reason += f" [{errno.errorcode.get(exc.errno, exc.errno)}]"
    return reason


def log_dir_error(directory: Path, exc: OSError) -> SettingsError:
    """The startup error for an unusable ``LOG_DIR``, naming the variable and the path that failed."""
    if isinstance(exc, FileExistsError) or (directory.exists() and not directory.is_dir()):
        why = "exists and is not a directory"
    else:
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(directory) else ""
        why = f"cannot create or write the log directory: {os_error_text(exc)}{where}"
    return SettingsError(f"invalid setting {ENV_PREFIX}DIR={str(directory)!r}: {why}")


def probe_log_dir(directory: Path) -> None:
    """Create ``directory`` if needed and create (and remove) a file in it. Raises OSError."""
    directory.mkdir(parents=True, exist_ok=True)
    probe = directory / f".probe-{os.getpid()}-{threading.get_ident()}"
    os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    probe.unlink()


def check_log_dir(directory: Path) -> Path:
    """Create ``directory`` if needed and prove a file can be created in it. Raise SettingsError."""
    directory = Path(directory).absolute()
    try:
        probe_log_dir(directory)
    except OSError as exc:
        raise log_dir_error(directory, exc) from None
    return directory
