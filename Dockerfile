# One Dockerfile, two images (docker-compose.yml picks the command of each role):
#   mediasearch:cpu  web, beat and the CPU workers: torch from the PyTorch CPU wheel index, so
#                    no CUDA runtime (about 0.6 GB of torch instead of 4.6 GB with CUDA, Triton
#                    and the nvidia-* wheels; how that was measured: README, "Images").
#   mediasearch:gpu  the GPU embedding worker: docker build --build-arg
#                    TORCH_INDEX_URL=https://pypi.org/simple (the default wheels carry CUDA).
# The web process needs the same packages as a CPU worker: it encodes queries with the model
# (torch, open_clip), and checks uploads with Pillow, pillow-heif, rawpy and PyAV (a video's
# length), so one CPU image serves both.
FROM python:3.11-slim-bookworm

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 1000 mediasearch \
    && mkdir -p /data && chown mediasearch:mediasearch /data
WORKDIR /app
# Tesseract, one of the two OCR engines (MEDIASEARCH_OCR_ENGINE=tesseract); RapidOCR, the
# default, comes with its models in its wheel (its OpenCV needs libGL and GLib).
RUN apt-get update && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-eng \
    libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

COPY requirements.txt .
# torch and torchvision first, at the versions requirements.txt pins, from the chosen index
# (the CPU index names them 2.14.1+cpu, which "==2.14.1" accepts); the second install then
# finds them satisfied and takes everything else from PyPI.
RUN pip install --index-url "$TORCH_INDEX_URL" \
        "$(grep '^torch==' requirements.txt)" "$(grep '^torchvision==' requirements.txt)" \
    && pip install -r requirements.txt

COPY --chown=mediasearch:mediasearch . .
# Static files are collected at build time; the values below exist only for this step.
RUN DJANGO_SECRET_KEY=collectstatic DATABASE_URL=postgresql://build/none REDIS_URL=redis://build \
    DJANGO_STATIC_ROOT=/app/staticfiles python manage.py collectstatic --no-input -v 0

USER mediasearch
ENV DJANGO_SETTINGS_MODULE=mediasearch.settings.base \
    DJANGO_STATIC_ROOT=/app/staticfiles
EXPOSE 8000
CMD ["gunicorn", "mediasearch.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2", "--threads", "4", "--timeout", "120", "--access-logfile", "-"]
