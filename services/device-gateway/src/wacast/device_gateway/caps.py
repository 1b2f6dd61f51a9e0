"""The daily cap of each device, from its limits (DEVICES) and its tenant's defaults."""

from __future__ import annotations

from datetime import datetime

from wacast.device_gateway.directory import Directory
from wacast.device_gateway.domain.lane import Lane
from wacast.device_gateway.domain.limits import daily_cap, local_day
from wacast.device_gateway.tenants import Tenants


class Caps:
    def __init__(self, directory: Directory, tenants: Tenants) -> None:
        self.directory = directory
        self.tenants = tenants

    def zone(self, tenant_id: str) -> str:
        return self.tenants.timezone(tenant_id)

    def of(self, lane: Lane, now: datetime) -> int | None:
        """Hand-offs the lane's device may make on the local day of `now`."""
        tenant = self.tenants.get(lane.tenant_id)
        device = self.directory.state(lane.device_id)
        if device is None:
            return tenant.device_daily_cap
        paired = device.first_paired_at
        return daily_cap(
            device.daily_cap,
            tenant.device_daily_cap,
            device.warmup,
            local_day(paired, tenant.timezone) if paired is not None else None,
            local_day(now, tenant.timezone),
        )
