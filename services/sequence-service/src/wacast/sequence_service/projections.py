"""The sequence-service's private tables, registered for `wacast projections rebuild`."""

from __future__ import annotations

from wacast.runtime.registry import ProjectionRegistration
from wacast.sequence_service.adapters.projection import PrivateTables
from wacast.sequence_service.settings import Settings

REGISTRATIONS = [
    ProjectionRegistration(
        name=PrivateTables.name,
        schema=Settings().sequences_schema,
        factory=PrivateTables,
        description="enrollments (the durable timer index) and the leads, devices, sequences "
        "and tenants that rendering and filters need",
    )
]
