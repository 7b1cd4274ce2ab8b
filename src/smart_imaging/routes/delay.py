"""``images.delay``: answer 503 with Retry-After until a configured moment (reference feature)."""

from __future__ import annotations

import math
import time

from ..errors import Unavailable
from ..tenants.registry import Tenant


def check_delay(tenant: Tenant, activity: str) -> None:
    delay = tenant.config.images.delay
    until = getattr(delay, f"{activity}Until", None) if delay else None
    if until is None:
        return
    remaining = until - time.time()
    if remaining > 0:
        raise Unavailable(
            f"images are being prepared; retry in {math.ceil(remaining)} s", retry_after=math.ceil(remaining)
        )
