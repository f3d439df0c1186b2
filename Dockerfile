# SearchFlow Event Generator: a slim image whose entry point is `python -m src.main`.
#   docker run --rm IMAGE                                  # 10,000 events into /data/raw (the default CMD)
#   docker run --rm IMAGE --count 100000 --seed 1          # flags follow the image name
#   docker run --rm IMAGE report                           # the report on /data/raw
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    OUTPUT_DIR=/data/raw \
    MPLCONFIGDIR=/tmp/matplotlib

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

# Batch by default; docker-compose runs it continuously. Flags given to `docker run IMAGE ...` replace the CMD.
ENTRYPOINT ["python", "-m", "src.main"]
CMD ["--count", "10000"]
