"""Settings of the campaign-service (environment variables `WACAST_*`).

Equivalents of the original system's tunables: `BROADCAST_MAX_POOLS_PER_USER` is
`WACAST_MAX_RUNNING_CAMPAIGNS_PER_TENANT`, `BROADCAST_COMPLETION_CHECK_SECONDS` is
`WACAST_COMPLETION_CHECK_SECONDS`, `BROADCAST_PROGRESS_LOG_SECONDS` is
`WACAST_PROGRESS_REPORT_SECONDS`. The stuck timeout and the per-device lane bound belong to
the device-gateway's settings.
"""

from __future__ import annotations

import ipaddress

from wacast.runtime.settings import CommonSettings

MIB = 1024 * 1024


class Settings(CommonSettings, frozen=True, kw_only=True):
    campaigns_port: int = 8082
    """Port of the campaign-service's health, readiness and metrics endpoint."""
    command_workers: int = 32
    """Commands one replica handles at once (a slow media fetch holds up no other command;
    concurrent decisions on one aggregate are settled by expected sequences)."""
    default_phone_region: str = "US"
    """Region (ISO 3166 alpha-2) for phones written without a country code, for tenants whose
    settings name none."""
    max_running_campaigns_per_tenant: int = 10
    """Campaigns of one tenant triggered and not yet completed at once; more wait as pending
    and trigger when a slot frees (was BROADCAST_MAX_POOLS_PER_USER)."""
    completion_check_seconds: float = 10.0
    """How often campaigns are checked for completion besides the wake-ups that outcome
    events give (was BROADCAST_COMPLETION_CHECK_SECONDS)."""
    progress_report_seconds: float = 30.0
    """How often a running fan-out or import logs its progress and publishes a live tick
    (was BROADCAST_PROGRESS_LOG_SECONDS)."""
    receipt_window_seconds: float = 3600.0
    """Time after completion during which delivery and read receipts still count; then the
    campaign is finished."""
    fanout_batch_size: int = 999
    """Send requests per atomic batch; the fan-out cursor event closes each batch, so at
    most 999."""
    import_batch_rows: int = 240
    """CSV rows per atomic batch of lead events (a row takes two to four events: at most
    240)."""
    adopt_seconds: float = 30.0
    """How often fan-outs and imports that no replica advances are taken over."""
    url_allowlist: str = ""
    """Comma-separated hosts or CIDRs that media URLs may reach although they are private,
    loopback or link-local (tests, private deployments). Empty: none."""
    fetch_connect_timeout_seconds: float = 5.0
    """Connect timeout of one media URL request."""
    fetch_timeout_seconds: float = 30.0
    """Time a media URL fetch may take in all, redirects included."""
    fetch_max_redirects: int = 5
    """Redirects followed (each re-checked) before a media URL fetch gives up."""
    image_max_input_bytes: int = 30 * MIB
    """Largest image accepted before compression."""
    image_target_bytes: int = 350_000
    """Stored images are compressed to at most this many bytes."""
    image_max_side: int = 1600
    """Stored images are resized so that their longer side is at most this many pixels."""
    video_max_bytes: int = 16 * MIB
    """Largest video accepted (stored as is)."""
    document_max_bytes: int = 100 * MIB
    """Largest document accepted (stored as is)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.fanout_batch_size <= 999:
            raise ValueError("fanout_batch_size must be 1-999")
        if not 1 <= self.import_batch_rows <= 240:
            raise ValueError("import_batch_rows must be 1-240")
        if self.command_workers < 1:
            raise ValueError("command_workers must be at least 1")
        if self.max_running_campaigns_per_tenant < 1:
            raise ValueError("max_running_campaigns_per_tenant must be at least 1")
        if len(self.default_phone_region) != 2 or not self.default_phone_region.isalpha():
            raise ValueError("default_phone_region must be a two-letter region code")
        for entry in allowlist_entries(self.url_allowlist):
            if "/" in entry:
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(f"url_allowlist entry {entry!r} is not a CIDR") from None


def allowlist_entries(raw: str) -> list[str]:
    return [entry.strip().lower() for entry in raw.split(",") if entry.strip()]
