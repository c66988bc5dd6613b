"""The live one-line summary while polling (on stderr).

On a terminal the line is rewritten in place (carriage return) a few times a
second; otherwise (a pipe, a container log) a plain line is printed every few
seconds, so logs stay readable.
"""

from __future__ import annotations

from typing import TextIO

from polling_client.tally import BOOKS_ROW, NO_VERSION_ROW, Tally

TTY_INTERVAL_S = 0.5
PLAIN_INTERVAL_S = 5.0


def live_line(tally: Tally, elapsed_s: float, versions: tuple[str, ...]) -> str:
    rate = tally.requests / elapsed_s if elapsed_s > 0 else 0.0
    error_pct = 100.0 * tally.errors / tally.requests if tally.requests else 0.0
    tts_total = tally.requests - tally.count(BOOKS_ROW)
    parts = [
        f"{elapsed_s:6.1f}s",
        f"{tally.requests} req {rate:.1f}/s",
        f"errors {tally.errors} ({error_pct:.1f}%)",
    ]
    for version in (*versions, NO_VERSION_ROW):
        count = tally.count(version)
        if count or version in versions:
            share = 100.0 * count / tts_total if tts_total else 0.0
            parts.append(f"{version} {count} ({share:.0f}%)")
    return " | ".join(parts)


class LiveDisplay:
    def __init__(self, stream: TextIO, versions: tuple[str, ...] = ("v1", "v2")) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._versions = versions
        self.interval_s = TTY_INTERVAL_S if self._tty else PLAIN_INTERVAL_S

    def update(self, tally: Tally, elapsed_s: float) -> None:
        line = live_line(tally, elapsed_s, self._versions)
        if self._tty:
            self._stream.write("\r" + line + "\x1b[K")
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def finish(self) -> None:
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()
