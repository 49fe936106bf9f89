"""The autoscaler's errors: the kind (temporary or permanent) decides whether the loop goes on."""

from __future__ import annotations

from errors import PermanentError, TemporaryError


class AutoscaleTemporaryError(TemporaryError):
    """Offsets or the scale target could not be reached this time; the next tick tries again."""


class AutoscalePermanentError(PermanentError):
    """The target refuses (no such Deployment, no permission): the autoscaler stops."""
