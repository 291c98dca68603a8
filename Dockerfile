FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY api api
COPY workflows workflows
COPY activities activities
COPY workers workers
COPY evently evently
COPY migrations migrations
COPY bench bench
RUN pip install --no-cache-dir . && useradd --system evently
USER evently
EXPOSE 8000
CMD ["evently", "api", "--host", "0.0.0.0"]
