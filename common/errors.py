"""The one base class of every error a user can cause: a bad option, bad data, a full disk, a
command run at the wrong time. Its message says what is wrong and what to do, in one line; the
CLI (pipeline/cli.py) catches ``UserError`` by type, prints ``<label>: <message>`` and exits 2,
while any other exception is a bug (a traceback with --verbose). A new error class a user can
cause derives from it (and, where callers expect one, from a built-in class such as ValueError)."""
from __future__ import annotations


class UserError(Exception):
    """An error in what the user gave or did, not in the code."""

    label = "error"  # the CLI's prefix: "error: <message>"
