"""``images.delay``: answer 503 with Retry-After until a configured moment (reference feature)."""

from __future__ import annotations

import math
import time

from ..errors import Unavailable
from ..tenants.registry import Tenant


def check_delay(tenant: Tenant, activity: str) -> None:
    delay = tenant.config.images.delay
    until = getattr(delay, f"{activity}Until", None) if delay else None
    if until is None or not math.isfinite(until):  # configs refuse NaN/Infinity; never overflow here
        return
    remaining = until - time.time()
    if remaining > 0:
        seconds = math.ceil(remaining)
        raise Unavailable(f"images are being prepared; retry in {seconds} s", retry_after=seconds)
