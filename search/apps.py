from django.apps import AppConfig


class SearchConfig(AppConfig):
    name = "search"
    verbose_name = "Photo search"

    def ready(self) -> None:
        from search import checks  # noqa: F401  (registers the system checks)
        from search.model_switch import active_spec
        from workers.embedding.active import set_active_spec_provider

        # Which model is active is the database's to say (the dashboard can switch it).
        set_active_spec_provider(active_spec)
