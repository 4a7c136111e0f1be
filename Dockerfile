# A slim image for relaygraph workers, the HTTP API and Flower, running as a non-root user.
# Build with the offline embedding model: docker build --build-arg EMBEDDINGS=1 .
FROM python:3.11-slim

ARG EMBEDDINGS=0
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HF_HUB_OFFLINE=1

RUN useradd --create-home --uid 10001 relaygraph
WORKDIR /app
COPY pyproject.toml README.md ./
COPY relaygraph ./relaygraph
RUN if [ "$EMBEDDINGS" = "1" ]; then \
        pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 && \
        pip install ".[workers,postgres,api,embeddings]"; \
    else \
        pip install ".[workers,postgres,api]"; \
    fi

USER relaygraph
CMD ["relaygraph", "worker"]
