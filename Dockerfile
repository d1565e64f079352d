# One image for web, worker and beat (docker-compose.yml picks the command).
FROM python:3.11-slim-bookworm

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
RUN pip install -r requirements.txt

COPY --chown=mediasearch:mediasearch . .
# Static files are collected at build time; the values below exist only for this step.
RUN DJANGO_SECRET_KEY=collectstatic DATABASE_URL=postgresql://build/none REDIS_URL=redis://build \
    DJANGO_STATIC_ROOT=/app/staticfiles python manage.py collectstatic --no-input -v 0

USER mediasearch
ENV DJANGO_SETTINGS_MODULE=mediasearch.settings.base \
    DJANGO_STATIC_ROOT=/app/staticfiles
EXPOSE 8000
CMD ["gunicorn", "mediasearch.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2", "--threads", "4", "--timeout", "120", "--access-logfile", "-"]
