"""How a handler says what kind of failure it met."""


class PermanentError(Exception):
    """Retrying cannot help (invalid input, forbidden transition): dead-letter at once."""


class TransientError(Exception):
    """Worth another try later (timeouts, a peer that is briefly down)."""


class RejectedMessage(PermanentError):
    """The message itself is unusable: bad JSON, unknown type, payload schema mismatch."""
