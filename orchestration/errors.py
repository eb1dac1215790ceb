"""The one exception type for mistakes a user can make (bad config, malformed input, a server that
is down). Its message names what and where, and says what to do; the CLI prints it without a
traceback."""


class CdpError(Exception):
    """A user-facing error: the message is the whole story."""
