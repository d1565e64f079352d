import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediasearch.settings.base")
application = get_wsgi_application()

from workers.active_engine import warm_up_in_background  # noqa: E402

# Load the model while the server starts taking requests: the first search is not slowed by
# it, and every page can say from the start which model (or the demo fallback) is in use.
warm_up_in_background()
