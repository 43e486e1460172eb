"""Start-up bookkeeping for the instance identity and secret fingerprints."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError

from gateway import __version__
from gateway.db import Database
from gateway.keys import InstanceSecret
from gateway.models import Instance, SecretMeta

log = logging.getLogger("mediagate.instance")
INSTANCE_ROW = 1


async def register_instance(db: Database, secret: InstanceSecret) -> str:
    """Create or refresh the instance row; warn when the instance secret changed."""
    try:
        return await _register(db, secret)
    except IntegrityError:
        # Another replica inserted the row at the same moment: it exists now.
        return await _register(db, secret)


async def _register(db: Database, secret: InstanceSecret) -> str:
    now = datetime.now(UTC)
    async with db.session() as session:
        instance = await session.get(Instance, INSTANCE_ROW)
        if instance is None:
            instance = Instance(
                id=INSTANCE_ROW,
                instance_id=str(uuid.uuid4()),
                created_at=now,
                last_version=__version__,
                last_started_at=now,
            )
            session.add(instance)
        else:
            instance.last_version = __version__
            instance.last_started_at = now
        meta = await session.get(SecretMeta, "instance_secret")
        if meta is None:
            session.add(SecretMeta(name="instance_secret", fingerprint=secret.fingerprint,
                                   source=secret.source, created_at=now))
        elif meta.fingerprint != secret.fingerprint:
            log.warning(
                "the instance secret changed since the last start: values encrypted or "
                "signed with the old secret (stream keys, tokens) can no longer be read"
            )
            meta.fingerprint = secret.fingerprint
            meta.source = secret.source
            meta.rotated_at = now
        return instance.instance_id
