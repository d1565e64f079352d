"""System checks (``manage.py check``, and every start of the web server) for settings that
would otherwise only fail inside a worker."""

from pathlib import Path

from django.conf import settings
from django.core.checks import Error, register

from workers.embedding.tags import (
    DEMO_VOCABULARY,
    GENERAL_VOCABULARY,
    VocabularyError,
    load_vocabulary,
)


@register()
def check_tag_settings(app_configs, **kwargs) -> list[Error]:
    errors = []
    # Which shipped file applies depends on the model, which is not loaded here: check both.
    paths = (
        [Path(settings.MEDIASEARCH_TAG_VOCABULARY)]
        if settings.MEDIASEARCH_TAG_VOCABULARY
        else [GENERAL_VOCABULARY, DEMO_VOCABULARY]
    )
    for path in paths:
        try:
            load_vocabulary(path)
        except VocabularyError as exc:
            errors.append(
                Error(
                    str(exc),
                    hint="Fix the file, or set MEDIASEARCH_TAG_VOCABULARY to another.",
                    id="mediasearch.E001",
                )
            )
    if not 0 < settings.MEDIASEARCH_TAG_MIN_SCORE <= 1:
        errors.append(
            Error(
                f"MEDIASEARCH_TAG_MIN_SCORE must be above 0 and at most 1, not "
                f"{settings.MEDIASEARCH_TAG_MIN_SCORE}.",
                id="mediasearch.E002",
            )
        )
    return errors
