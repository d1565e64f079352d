from django.apps import AppConfig


class SearchConfig(AppConfig):
    name = "search"
    verbose_name = "Photo search"

    def ready(self) -> None:
        from search.ingest.active_model import active_spec_from_database
        from search.tags import checks  # noqa: F401  (registers the system checks)
        from workers.active_engine import set_active_spec_provider

        # Which model is active is the database's to say (the dashboard can switch it).
        set_active_spec_provider(active_spec_from_database)
