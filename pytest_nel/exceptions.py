"""The errors pytest-nel raises, as one tree.

::

    NelError                  root of everything raised on purpose
    +-- NelUsageError         the user must fix something (becomes a pytest usage error)
    |   +-- ConfigError       a bad config file, key, value or override
    |   +-- DatasetError      a dataset that cannot be found or loaded
    |   +-- OutputDirError    an output folder that would be clobbered or mixed
    |   +-- ResultsError      a results folder that cannot be read, or two runs that
    |   |                     cannot be compared (nel compare / nel gate)
    |   +-- PolicyError       a gate policy file with a bad key or value
    |   +-- SandboxUnavailable  a sandbox backend cannot run here (bwrap or an
    |                         engine missing); names what to install
    +-- SampleError           one sample could not be evaluated (fails its item,
        |                     never a 0)
        +-- ModelError        the endpoint failed after retries (category model_error)
        |   +-- ModelTimeout  every attempt timed out (category model_timeout)
        |   +-- CircuitOpen   the endpoint is down; the run stops (category model_error)
        |   +-- FatalClientError  the proxy's raise_client_errors marked an upstream
        |                     4xx fatal (bad key, unknown model); the run stops
        +-- SandboxError      the sandbox failed (category sandbox_error)
        +-- ScorerError       the scorer raised (category scorer_error)
        +-- HarnessError      our own bug or an unexpected state
            |                 (category harness_error)
            +-- EngineDied    the engine process exited; the run stops

A ``SampleError`` carries its ``category``: it is written to results.jsonl and shown on
the failed item. Errors are never turned into a reward of 0.
"""

from __future__ import annotations

ERROR_CATEGORIES = (
    "model_error",
    "model_timeout",
    "sandbox_error",
    "scorer_error",
    "harness_error",
)


class NelError(Exception):
    """Root of every error pytest-nel raises on purpose."""


class NelUsageError(NelError):
    """Something the user must fix before the run can start."""


class ConfigError(NelUsageError):
    """A config file, key, value or override is invalid."""


class DatasetError(NelUsageError):
    """A dataset cannot be found or loaded."""


class OutputDirError(NelUsageError):
    """The output folder would mix or clobber runs."""


class ResultsError(NelUsageError):
    """A results folder cannot be read, or two runs cannot be compared."""


class PolicyError(NelUsageError):
    """A gate policy file is invalid (the message names the key path)."""


class SandboxUnavailable(NelUsageError):
    """A sandbox backend cannot run here; the message says what to install."""


class SampleError(NelError):
    """One sample could not be evaluated; its item fails with ``category``."""

    category = "harness_error"

    def __init__(self, message: str, *, category: str | None = None) -> None:
        super().__init__(message)
        if category is not None:
            self.category = category

    def __reduce__(self) -> tuple[object, ...]:
        """Pickle with the category (errors cross the engine's process boundary)."""
        return (_rebuild_sample_error, (type(self), str(self), self.category))


def _rebuild_sample_error(
    cls: type[SampleError], message: str, category: str
) -> SampleError:
    return cls(message, category=category)


class ModelError(SampleError):
    """The model endpoint failed after all retries."""

    category = "model_error"


class ModelTimeout(ModelError):
    """Every attempt to reach the model timed out."""

    category = "model_timeout"


class CircuitOpen(ModelError):
    """The endpoint's circuit breaker is open: it failed too often, the run stops."""


class FatalClientError(ModelError):
    """The upstream refused a request as it would refuse every one; the run stops.

    Raised when a proxy's ``raise_client_errors`` interceptor marks an answer fatal
    (header ``X-Nel-Fatal: 1``): a 401, an unknown model, a refused parameter.
    """


class SandboxError(SampleError):
    """The sandbox could not run the verification."""

    category = "sandbox_error"


class ScorerError(SampleError):
    """The scorer raised an exception (a bug in the scorer, not the model's failure)."""

    category = "scorer_error"


class HarnessError(SampleError):
    """An unexpected state inside the harness."""

    category = "harness_error"


class EngineDied(HarnessError):
    """The generation engine's process exited; the run stops."""
