from django.conf import settings

from workers.active_engine import configured_spec, loaded_engine
from workers.embedding.model import DEMO_MODEL_NAME


def active_model(request):
    """What every page says about the model: above all, when it is only the demo model."""
    engine = loaded_engine()
    if engine is not None:
        return {
            "model_label": engine.model_id,
            "model_is_demo": engine.is_demo,
            "model_fallback_reason": engine.fallback_reason,
        }
    spec = configured_spec()
    return {
        "model_label": str(spec),
        "model_is_demo": spec.name == DEMO_MODEL_NAME,
        "model_fallback_reason": "",
        "model_configured": f"{settings.MEDIASEARCH_CLIP_MODEL}",
    }
