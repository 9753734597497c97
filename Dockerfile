# Image of the worker binary (used by docker-compose.yml). The simulators are not in it.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p pcn-worker --bin pcn-worker -p pcnctl --bin pcnctl

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/pcn-worker /usr/local/bin/pcn-worker
COPY --from=build /src/target/release/pcnctl /usr/local/bin/pcnctl
COPY templates /opt/pcn/templates
ENV PCN_SMS_TEMPLATES=/opt/pcn/templates/sms
USER 10001
ENTRYPOINT []
CMD ["pcn-worker", "run"]
