"""Imports every module that defines tables, so `Base.metadata` is complete."""

from gateway import models as _gateway_models  # noqa: F401
from gateway.brokerage import models as _brokerage_models  # noqa: F401
from gateway.calls import models as _calls_models  # noqa: F401
from gateway.db import Base
from gateway.host import models as _host_models  # noqa: F401
from gateway.live import models as _live_models  # noqa: F401
from gateway.studio import models as _studio_models  # noqa: F401

metadata = Base.metadata
