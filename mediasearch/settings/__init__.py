"""Settings, all read from the environment.

``base`` is the settings module for development and production; it pulls in one module per
integration (celery, storage, embeddings). ``test`` starts embedded servers when no URLs are
given, then loads ``base``.
"""
