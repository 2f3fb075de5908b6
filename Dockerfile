# embassy-watch: one image for the daemon (`run`) and the archive web server (`serve`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
# Dependencies come from pyproject.toml; the source is copied with it so pip installs the package.
COPY pyproject.toml README.md ./
COPY config ./config
COPY crawler ./crawler
COPY monitor ./monitor
COPY storage ./storage
RUN pip install . \
    && useradd --system --home-dir /data --create-home embassy

USER embassy
WORKDIR /data
# serve listens here when EMBASSY_WATCH_SERVE_HOST=0.0.0.0 (the compose file sets it).
EXPOSE 8080
ENTRYPOINT ["embassy-watch"]
CMD ["run"]
