"""The one exception type the command line turns into a one-line message and exit code 2, and the one-line
warning every part of latentquant prints."""

import sys


def warn(message: str) -> None:
    """One line on stderr, prefixed as every latentquant warning is."""
    print(f"latentquant: warning: {message}", file=sys.stderr)


class UserError(ValueError):
    """Bad input from the user (config, file, path): shown as one line, never as a traceback.

    A ValueError, so a library caller of `latentquant.data.load` or the metrics catches it as one.
    """


class Interrupted(Exception):
    """A signal stopped training after a step; `code` is the conventional exit status 128 + signal number."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code
