# The fintech-release user-code image: the code location the Dagster Helm chart serves over gRPC,
# and the image of every run pod the K8sRunLauncher starts. Build steps (git checkout, Checkstyle,
# Gradle test/build, jlink of the JRE base image) run inside those run pods, so the image carries
# the same build tools the local platform uses: git, JDK 17, Gradle, JUnit 4, Checkstyle. Docker
# images are built by the isolated builder, never by a Docker engine in or reached from these pods.
#
#   docker build -t <registry>/fintech-release/orchestrator:<version> .
#
# python:3.11-slim-bookworm is Debian 12, the distribution scripts/install-system-deps.sh targets.

FROM python:3.11-slim-bookworm AS wheels
WORKDIR /src
COPY pyproject.toml setup.cfg README.md ./
COPY fintech_release ./fintech_release
# dagster-postgres / dagster-k8s pair with dagster 1.13.27 (pinned in pyproject.toml).
RUN pip wheel --no-cache-dir --wheel-dir /wheels . "dagster-postgres==0.29.27" "dagster-k8s==0.29.27"

FROM python:3.11-slim-bookworm
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates git openjdk-17-jdk-headless gradle junit4 checkstyle \
    && rm -rf /var/lib/apt/lists/*
COPY --from=wheels /wheels /tmp/wheels
RUN pip install --no-cache-dir --no-index --find-links /tmp/wheels fintech-release dagster-postgres dagster-k8s \
    && rm -rf /tmp/wheels

# Non-root, with a writable home for Gradle's cache and the build workspaces.
RUN groupadd --gid 10001 fintech && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/fintech fintech \
    && mkdir -p /opt/fintech-release/config /opt/dagster/dagster_home \
    && chown -R 10001:10001 /opt/fintech-release /opt/dagster
USER 10001:10001
WORKDIR /opt/fintech-release
ENV FINTECH_RELEASE_CONFIG=/opt/fintech-release/config/release.yaml \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    GRADLE_USER_HOME=/home/fintech/.gradle \
    PYTHONUNBUFFERED=1

EXPOSE 3030
# The chart passes its own arguments; this default serves the code location when run on its own.
CMD ["dagster", "api", "grpc", "-m", "fintech_release.definitions", "-h", "0.0.0.0", "-p", "3030"]
