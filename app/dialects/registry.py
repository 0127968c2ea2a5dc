"""Every platform Glue speaks. Adding one is writing its dialect module (and its
web hook) and naming it here: the flow schema, the engine and the runner take
it from this list."""

from __future__ import annotations

from app.dialects import ifbyphone, voipnow
from app.dialects.base import Dialect
from app.dialects.didml import DIDML
from app.dialects.twiml import TWIML

DIALECTS: tuple[Dialect, ...] = (ifbyphone, voipnow, DIDML, TWIML)
