"""How states are stored in the private tables: msgspec JSON."""

from __future__ import annotations

from typing import Any

import msgspec

from wacast.contracts.values import MediaRef
from wacast.sequence_service.domain.enrollment import Enrollment
from wacast.sequence_service.domain.sequence import Sequence
from wacast.sequence_service.domain.views import LeadView

ENROLLMENT = msgspec.json.Decoder(Enrollment)
SEQUENCE = msgspec.json.Decoder(Sequence)
MEDIA = msgspec.json.Decoder(MediaRef)
LEAD = msgspec.json.Decoder(LeadView)
_encoder = msgspec.json.Encoder()


def encode(value: Any) -> bytes:
    return _encoder.encode(value)
