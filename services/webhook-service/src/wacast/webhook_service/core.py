"""What the webhook-service's parts share: settings, the bus, the tables, the directory."""

from __future__ import annotations

from dataclasses import dataclass

from wacast.contracts.subjects import Topology
from wacast.runtime.clock import ControlledClock, SystemClock
from wacast.runtime.eventstore import EventStore
from wacast.runtime.projection import ProjectionRunner
from wacast.webhook_service.adapters.http import Poster
from wacast.webhook_service.adapters.lookups import Lookups
from wacast.webhook_service.directory import Directory
from wacast.webhook_service.settings import Settings


@dataclass
class Core:
    settings: Settings
    topology: Topology
    store: EventStore
    clock: SystemClock | ControlledClock
    directory: Directory
    lookups: Lookups
    runner: ProjectionRunner
    poster: Poster
