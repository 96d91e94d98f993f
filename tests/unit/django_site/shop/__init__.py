"""An installed app whose tasks module autodiscover_tasks() finds."""
