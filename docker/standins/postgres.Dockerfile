# PostgreSQL 15 from Debian's packages: the stand-in for postgres:16.4-bookworm where no registry
# answers (docker/compose.standins.yaml). Same variables as the official image: POSTGRES_USER,
# POSTGRES_PASSWORD, POSTGRES_DB, plus POSTGRES_PORT (host network, 127.0.0.1 only).
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15=15.* \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/lib/postgresql/data /run/postgresql \
    && chown postgres:postgres /var/lib/postgresql/data /run/postgresql
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
USER postgres
ENTRYPOINT ["/bin/sh", "/usr/local/bin/postgres-entrypoint.sh"]
