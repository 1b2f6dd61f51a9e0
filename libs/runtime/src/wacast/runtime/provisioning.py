"""Creates or updates every stream and bucket a namespace needs; safe to run at each start."""

from __future__ import annotations

from typing import Any

from nats.aio.client import Client
from nats.js.api import (
    DiscardPolicy,
    KeyValueConfig,
    ObjectStoreConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, BucketNotFoundError, NotFoundError

from wacast.contracts.streams import (
    ALL,
    LEASES_BUCKET,
    MEDIA_BUCKET,
    SESSIONS_BUCKET,
)
from wacast.contracts.subjects import Topology
from wacast.runtime.clock import clock_bucket
from wacast.runtime.deadletter import DeadLetters

LEASE_TTL_SECONDS = 15.0


async def ensure_streams(nc: Client, topology: Topology, replicas: int = 1) -> None:
    js = nc.jetstream()
    for spec in ALL:
        config = stream_config(spec.config(topology, replicas))
        try:
            await js.stream_info(spec.name(topology))
        except NotFoundError:
            try:
                await js.add_stream(config)
            except BadRequestError:
                # Another process created it between the two calls.
                await js.update_stream(config)
        else:
            await js.update_stream(config)
    await DeadLetters(nc, topology).ensure(replicas)
    await ensure_buckets(nc, topology, replicas)


def stream_config(options: dict[str, Any]) -> StreamConfig:
    """nats-py's config from the contract's plain options (enums by value)."""
    return StreamConfig(
        **{
            **options,
            "storage": StorageType(options["storage"]),
            "retention": RetentionPolicy(options["retention"]),
            "discard": DiscardPolicy(options["discard"]),
        }
    )


async def ensure_buckets(nc: Client, topology: Topology, replicas: int = 1) -> None:
    js = nc.jetstream()
    for name, description in (
        (MEDIA_BUCKET, "Media bytes referenced by MediaStored events"),
        (SESSIONS_BUCKET, "WhatsApp session stores (cannot be rebuilt from events)"),
    ):
        bucket = topology.bucket(name)
        try:
            await js.object_store(bucket)
        except (BucketNotFoundError, NotFoundError):
            await js.create_object_store(
                bucket,
                ObjectStoreConfig(
                    bucket=bucket,
                    description=description,
                    replicas=replicas,
                    storage=StorageType.FILE,
                ),
            )
    leases = topology.bucket(LEASES_BUCKET)
    try:
        await js.key_value(leases)
    except BucketNotFoundError:
        await js.create_key_value(
            KeyValueConfig(bucket=leases, history=1, ttl=LEASE_TTL_SECONDS, replicas=replicas)
        )
    await clock_bucket(nc, topology)
