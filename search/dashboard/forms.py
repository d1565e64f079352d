"""The dashboard's model switch form."""

from __future__ import annotations

from django import forms


class ModelSwitchForm(forms.Form):
    name = forms.CharField(
        label="open_clip model",
        max_length=100,
        widget=forms.TextInput(attrs={"list": "open-clip-models", "placeholder": "ViT-B-32"}),
    )
    pretrained = forms.CharField(
        label="Weights",
        max_length=500,
        required=False,
        help_text=(
            "An open_clip tag (e.g. laion2b_s34b_b79k), an hf-hub: id, a checkpoint file in the "
            "models folder (MEDIASEARCH_MODELS_DIR), or empty for random weights."
        ),
        widget=forms.TextInput(attrs={"placeholder": "laion2b_s34b_b79k"}),
    )
    precision = forms.ChoiceField(
        label="Precision",
        choices=[("fp32", "fp32"), ("int8", "int8 (faster on a CPU, slightly less exact)")],
        initial="fp32",
        required=False,
    )

    def clean_precision(self) -> str:
        return self.cleaned_data.get("precision") or "fp32"


class RetryReasonForm(forms.Form):
    # Exactly as stored: the reason is matched, not searched. A CharField refuses NUL, which
    # PostgreSQL text cannot hold.
    reason = forms.CharField(required=False, strip=False, max_length=10_000)


class CancelSwitchForm(forms.Form):
    model = forms.IntegerField(min_value=1, max_value=2**63 - 1)
