"""CSV lead imports: streamed, in atomic batches, resumable, with a per-row error report.

The caller stages the file in the media bucket as `uploads/<tenant>/<name>` (the
api-gateway from an upload, `wacast leads import` from a local file), then sends
`ImportLeads` naming it. The command appends `LeadImportStarted` and answers at once; the
import runs in the background. The file is read record by record from a temporary file
(spooled to disk), never whole in memory. Each atomic batch of the LEADS stream holds the
lead events of up to `import_batch_rows` rows (a new lead is its phone claim and
`LeadCreated`; an existing phone updates its lead when `update_existing`, else the row is
refused), the batch's `LeadImportRowsFailed` (row numbers and reasons), and closes with
`LeadImportProgressed` on the import's subject with its expected sequence: the progress
event is the resume point, so an import taken over after a crash goes on after the last
batch, and two replicas cannot both run it. New leads without a device are shared evenly
over the tenant's devices (always the one with the fewest leads). The staged file is
deleted when the import ends.
"""

from __future__ import annotations

import logging

from wacast.campaign_service.adapters import objects
from wacast.campaign_service.context import Deps, new_id, ok
from wacast.campaign_service.domain import lead as rules
from wacast.campaign_service.domain.errors import Refused, invalid
from wacast.campaign_service.domain.lead_row import BadFile
from wacast.campaign_service.import_run import ImportRun, Stop
from wacast.campaign_service.jobs import Jobs
from wacast.campaign_service.leads import LeadCommands
from wacast.contracts import commands as cmd
from wacast.contracts import leads as ld
from wacast.contracts.base import Reply
from wacast.contracts.streams import LEADS
from wacast.runtime.eventstore import Conflict

log = logging.getLogger("wacast.campaigns.imports")


class Imports:
    def __init__(self, deps: Deps, leads: LeadCommands, jobs: Jobs) -> None:
        self.deps = deps
        self.leads = leads
        self.jobs = jobs

    async def start(self, c: cmd.ImportLeads) -> Reply:
        t = c.tenant_id
        objects.check_upload(t, c.object_name)
        if not c.filename.strip():
            raise invalid("invalid_filename", "The import needs the file's name")
        if await self.deps.objects.size(c.object_name) is None:
            raise Refused("object_not_found", "No staged file has this name", 404, c.object_name)
        device_id = await self.leads.device(t, c.device_id) if c.device_id else ""
        import_id = new_id("i", t, c.idempotency_key, c.import_id, "import id")
        event = ld.LeadImportStarted(
            tenant_id=t,
            occurred_at=self.deps.clock.now(),
            import_id=import_id,
            filename=c.filename.strip(),
            object_name=c.object_name,
            device_id=device_id,
            status=c.status,
            tags=rules.clean_tags(c.tags),
            update_existing=c.update_existing,
        )
        try:
            done = await self.deps.store.append(
                event.subject(self.deps.topology), [event], msg_id=import_id, expected=0
            )
        except Conflict:
            if c.idempotency_key and not c.import_id:
                return ok(None, LEADS, import_id)
            raise Refused(
                "import_exists", "An import with this id exists", 409, import_id
            ) from None
        self.run_later(t, import_id)
        return ok(done, LEADS, import_id)

    def run_later(self, tenant_id: str, import_id: str) -> None:
        self.jobs.start(("import", tenant_id, import_id), lambda: self.run(tenant_id, import_id))

    async def position(self, tenant_id: str, import_id: str) -> int:
        return await self.deps.store.last_seq(
            LEADS, self.deps.topology.lead_import(tenant_id, import_id)
        )

    async def run(self, tenant_id: str, import_id: str) -> None:
        subject = self.deps.topology.lead_import(tenant_id, import_id)
        history = await self.deps.store.load(LEADS, subject)
        started = history[0].event if history else None
        if not isinstance(started, ld.LeadImportStarted) or isinstance(
            history[-1].event, ld.LeadImportCompleted | ld.LeadImportFailed
        ):
            return
        progress = next(
            (s.event for s in reversed(history) if isinstance(s.event, ld.LeadImportProgressed)),
            ld.LeadImportProgressed(
                tenant_id=tenant_id,
                occurred_at=started.occurred_at,
                import_id=import_id,
                rows_done=0,
            ),
        )
        run = ImportRun(self.deps, started, progress, history[-1].seq)
        try:
            body = await self.deps.objects.read(started.object_name)
        except Refused:
            await run.fail("file_missing", "the staged file is gone")
            return
        try:
            await run.go(body)
        except BadFile as exc:
            await run.fail(exc.reason, exc.detail)
        except Stop:
            log.info("import %s continues elsewhere", import_id)
            return
        finally:
            body.close()
        await self.deps.objects.delete(started.object_name)
