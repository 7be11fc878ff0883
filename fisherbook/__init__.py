"""fisherbook: the Fisher information matrix and natural gradient descent, derived and checked.

Closed forms come from sympy (``Family``), checked against quadrature; Monte Carlo estimators
give standard errors (``estimate_fisher``); ``verify`` checks the Fisher identities.
"""

from . import families
from .errors import (
    DerivationError,
    DomainError,
    FamilySpecError,
    FisherbookError,
    NormalisationError,
    RegularityError,
    SingularFisherError,
)
from .estimators import FisherEstimate, MeanEstimate, estimate_fisher, mc_mean
from .family import Family
from .verify import VerificationReport, verify

__all__ = [
    "DerivationError",
    "DomainError",
    "Family",
    "FamilySpecError",
    "FisherEstimate",
    "FisherbookError",
    "MeanEstimate",
    "NormalisationError",
    "RegularityError",
    "SingularFisherError",
    "VerificationReport",
    "estimate_fisher",
    "families",
    "mc_mean",
    "verify",
]

__version__ = "0.1.0"
