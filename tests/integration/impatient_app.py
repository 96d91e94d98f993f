"""An app whose producers give up on an unreachable server after half a second, for tests of
what the command line prints then (imported as `impatient_app`; URL from the environment)."""

from __future__ import annotations

from conveyor import Conveyor

app = Conveyor("impatient")
app.conf.broker_retry_budget = 0.5
