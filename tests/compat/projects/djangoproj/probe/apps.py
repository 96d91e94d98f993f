from django.apps import AppConfig
from django.core import checks


def worker_started(app_configs, **kwargs):
    """A system check that always reports, so a test can count where the checks ran."""
    return [checks.Warning("probe checks ran", id="probe.W001")]


class ProbeConfig(AppConfig):
    name = "probe"

    def ready(self):
        checks.register(worker_started)
