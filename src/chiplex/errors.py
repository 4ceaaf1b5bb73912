"""The one error type users see: a message (located when it can be), never a traceback."""


class ChiplexError(Exception):
    """A user-facing error; the CLI prints its message and exits with code 1."""
