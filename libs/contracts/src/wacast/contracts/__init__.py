"""Events, commands, subjects and stream configs of wacast: the shapes services share.

- `base`: `Event`, `Command`, `Reply`, `Problem` and the JSON encoder.
- `values`: value objects (`Pacing`, `Audience`, `MessageContent`, `SendWindow`, ...).
- one module per stream, each exporting a tagged union of its events: `devices`
  (`DeviceEvent`), `leads` (`LeadEvent`), `media` (`MediaEvent`), `campaigns`
  (`CampaignEvent`), `messages` (`MessageEvent`), `sequences` (`SequenceEvent`),
  `tenants` (`TenantEvent`), `webhooks` (`WebhookEvent`; also the public event types
  endpoints subscribe to, and the webhook commands and queries).
- `commands`: what each owner accepts, one union per owner.
- `subjects`: subject and stream names (`Topology`), partitions of send requests.
- `streams`: which subjects each stream holds, its config, its decoder.
- `versioning`: schema versions and upcasters.
- `ids`: deterministic ids (message, enrollment, phone claim).

An event's tag is its class name and is stored with it: renaming an event class, or
changing a stored shape without a default or an upcaster, breaks stored data. The
contract test (`tests/test_event_contracts.py`) pins the JSON of every event type.
"""
