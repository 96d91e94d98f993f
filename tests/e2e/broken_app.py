"""A module whose import fails, to check that -A shows the real error."""

from conveyor import Conveyor

app = Conveyor("broken")
RATIO = 1 / 0
