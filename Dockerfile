FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY portal ./portal
COPY accounts_app ./accounts_app
COPY provisioning ./provisioning
COPY opsgate_cli ./opsgate_cli
COPY templates ./templates
COPY manage.py ./
RUN pip install --no-cache-dir . && \
    OPSGATE_PRODUCTION=false python manage.py collectstatic --noinput && \
    useradd --system --home /app opsgate && mkdir -p /app/var && chown opsgate /app/var
USER opsgate
EXPOSE 8000
CMD ["gunicorn", "portal.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3"]
