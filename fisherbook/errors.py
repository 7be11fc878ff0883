"""Errors raised by fisherbook. Each message names what is wrong."""

from __future__ import annotations


class FisherbookError(ValueError):
    """Base class of every error fisherbook raises on bad input or failed derivations."""


class FamilySpecError(FisherbookError):
    """The family is ill-specified (missing symbol, bad support, parameter absent, ...)."""


class NormalisationError(FisherbookError):
    """The density does not integrate (or sum) to one over its support."""


class RegularityError(FisherbookError):
    """The regularity conditions behind the Fisher identities fail (e.g. a moving support)."""


class DomainError(FisherbookError):
    """A parameter value is missing, non-finite or outside its domain."""


class DerivationError(FisherbookError):
    """No trustworthy closed form was found (time limit, unevaluated integral, failed check)."""


class SingularFisherError(FisherbookError):
    """A Fisher matrix is singular (or numerically so) and no damping was given."""


class NonFiniteLossError(FisherbookError):
    """Training produced a non-finite loss; ``step`` is where, ``last_finite_loss`` the loss before."""

    def __init__(self, message: str, *, step: int, last_finite_loss: float) -> None:
        super().__init__(message)
        self.step = step
        self.last_finite_loss = last_finite_loss


class QuadratureWarning(UserWarning):
    """A numerical integral whose error estimate is too large for its value to be trusted."""
