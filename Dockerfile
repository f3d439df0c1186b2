# SearchFlow Event Generator: a slim image that runs `python -m src.main`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    OUTPUT_DIR=/data/raw

WORKDIR /app

# Dependencies first, so a code change does not reinstall them.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY src ./src
COPY schemas ./schemas

# Run as an unprivileged user that owns the output volume.
RUN useradd --create-home --uid 10001 generator \
    && mkdir -p /data/raw \
    && chown -R generator:generator /data
USER generator
VOLUME ["/data/raw"]

# Batch by default; docker-compose runs it continuously. Any flags can follow `docker run IMAGE`.
CMD ["python", "-m", "src.main", "--count", "10000"]
