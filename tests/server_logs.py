"""Everything a server in this process logs, uvicorn's own loggers included (they do not
propagate to the root logger, so pytest's caplog misses them)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

WATCHED = ("", "uvicorn")  # uvicorn.error propagates to uvicorn, which stops there


class ServerLogs(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if not any(r is record for r in self.records):
            self.records.append(record)

    def lines(self, logger: str = "", level: int = logging.DEBUG) -> list[str]:
        return [
            self.format(r)
            for r in self.records
            if r.levelno >= level
            and (r.name == logger or r.name.startswith(logger + ".") or not logger)
            and r.name != "smart_imaging.access"
        ]

    @property
    def text(self) -> str:
        """Every record, formatted with its traceback if it has one."""
        return "\n".join(self.format(r) for r in self.records)

    def tracebacks(self) -> list[str]:
        return [self.format(r) for r in self.records if r.exc_info or "Traceback" in r.getMessage()]


@contextlib.contextmanager
def capture() -> Iterator[ServerLogs]:
    """Collect records of the root and uvicorn loggers; ``smart_imaging`` at INFO meanwhile."""
    handler = ServerLogs()
    levels = {}
    for name in (*WATCHED, "smart_imaging"):
        logger = logging.getLogger(name)
        levels[name] = logger.level
        if name in WATCHED:
            logger.addHandler(handler)
    logging.getLogger("smart_imaging").setLevel(logging.INFO)
    try:
        yield handler
    finally:
        for name in WATCHED:
            logging.getLogger(name).removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
