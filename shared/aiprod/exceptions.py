"""Every error aiprod raises on purpose derives from ``AiprodError``.

The type decides ack or retry: a ``PermanentError`` is logged, answered with an event and
acknowledged; a ``TransientError`` propagates so Pub/Sub redelivers (then dead-letters).
"""


class AiprodError(Exception):
    """Base of every aiprod error."""


class PermanentError(AiprodError):
    """Retrying cannot fix this message: acknowledge it with an event and a log line."""


class TransientError(AiprodError):
    """Infrastructure hiccup: let the message be redelivered."""


class ConfigError(AiprodError):
    """A setting is missing or malformed (names the variable, never its value)."""


class StoreUnavailableError(TransientError):
    """The document store could not be reached or the transaction kept aborting."""


class BusUnavailableError(TransientError):
    """A publish did not complete within its deadline."""


class ProviderError(AiprodError):
    """A provider refused or failed a call; carries the taxonomy class and a short code."""

    def __init__(
        self,
        error_class: str,
        code: str,
        message: str,
        cost_micros: int = 0,
        retry_after_s: float | None = None,
    ):
        super().__init__(message)
        self.error_class = error_class
        self.code = code
        self.cost_micros = cost_micros
        self.retry_after_s = retry_after_s  # the provider's Retry-After, when it sent one


# -- operator commands (aiprod budget / aiprod dlq) ---------------------------------------------


class OperatorInputError(AiprodError):
    """An operator command was given an argument it cannot act on (bad scope, amount, id)."""


class DeadLetterNotFoundError(OperatorInputError):
    """No stored dead letter has the id an operator named."""


class DeadLetterReplayError(OperatorInputError):
    """A stored dead letter cannot be replayed (already replayed, or no source topic known)."""


class ClaimLostError(AiprodError):
    """Another delivery holds the attempt now: this one must not send anything."""
