# The bot as one image: CPU-only PyTorch, the shipped default models, SQLite on a volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HOME=/cache/huggingface \
    DATABASE_URL=sqlite+aiosqlite:////data/jokes.db

WORKDIR /app
COPY requirements.txt .
# The CPU wheel index keeps torch at ~200 MB instead of a multi-GB CUDA build.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt

COPY settings.py alembic.ini ./
COPY bot ./bot
COPY generation ./generation
COPY storage ./storage
COPY models ./models

RUN useradd --create-home --uid 1000 bot && mkdir -p /data /cache && chown bot /data /cache
USER bot
VOLUME ["/data", "/cache"]

# SIGTERM lets the bot finish in-flight jokes and votes (see shutdown_grace_s).
STOPSIGNAL SIGTERM
CMD ["python", "-m", "bot"]
