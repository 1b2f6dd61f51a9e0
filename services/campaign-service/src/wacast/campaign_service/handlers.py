"""The campaign-service's command entry point: one command in, one decision out.

Every command of the `campaigns` owner is routed to the module that owns its rules; a
refusal (`Refused`) becomes a problem reply with its code and status: 404 for an unknown
lead, campaign, media or object, 409 for a state that forbids the command, 413/415 for
media that cannot be taken, 422 for input that is not acceptable.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from wacast.campaign_service.campaigns import CampaignCommands
from wacast.campaign_service.domain.errors import Refused
from wacast.campaign_service.imports import Imports
from wacast.campaign_service.leads import LeadCommands
from wacast.campaign_service.media import MediaCommands
from wacast.contracts import commands as cmd
from wacast.contracts.base import Command, Reply
from wacast.contracts.subjects import check_token
from wacast.runtime.commands import problem
from wacast.runtime.eventstore import Conflict

log = logging.getLogger("wacast.campaigns.handlers")
Route = Callable[[Any], Awaitable[Reply]]


class Handlers:
    def __init__(
        self,
        leads: LeadCommands,
        media: MediaCommands,
        campaigns: CampaignCommands,
        imports: Imports,
    ) -> None:
        self.routes: dict[type[Command], Route] = {
            cmd.CreateLead: leads.create,
            cmd.UpdateLead: leads.update,
            cmd.TagLeads: leads.tag,
            cmd.OptOutLead: leads.opt_out,
            cmd.OptInLead: leads.opt_in,
            cmd.DeleteLead: leads.delete,
            cmd.EraseLead: leads.erase,
            cmd.ImportLeads: imports.start,
            cmd.IngestMedia: media.ingest,
            cmd.StoreMedia: media.record,
            cmd.DeleteMedia: media.delete,
            cmd.CreateCampaign: campaigns.create,
            cmd.ScheduleCampaign: campaigns.schedule,
            cmd.TriggerCampaign: campaigns.trigger,
            cmd.PauseCampaign: campaigns.pause,
            cmd.ResumeCampaign: campaigns.resume,
            cmd.CancelCampaign: campaigns.cancel,
        }

    async def handle(self, command: Command) -> Reply:
        route = self.routes.get(type(command))
        if route is None:
            return problem(
                "unsupported_command",
                "This service does not take that command",
                400,
                type(command).__name__,
            )
        try:
            check_token(command.tenant_id, "tenant")
            return await route(command)
        except Refused as exc:
            return problem(exc.code, exc.title, exc.status, exc.detail, **exc.extra)
        except Conflict:
            return problem("concurrent_change", "Others changed it at the same time; retry", 409)
        except ValueError as exc:  # an id that cannot be a subject token
            return problem("invalid_id", "An id in the command is not usable", 422, str(exc))
