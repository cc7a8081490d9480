# syntax=docker/dockerfile:1
# Hookplane in a small, non-root image. Build with the commit recorded for /version:
#   docker build --build-arg SOURCE_GIT_SHA=$(git rev-parse --short=12 HEAD) -t hookplane .
# Run (the master key and secrets come from the environment, data from a volume):
#   docker run -p 8080:8080 -v hookplane-data:/data -e HOOKPLANE_MASTER_KEY=... -e HOOKPLANE_ADMIN_TOKEN=... hookplane
# or see compose.yaml.

FROM rust:1-bookworm AS build
ARG SOURCE_GIT_SHA=unknown
ENV SOURCE_GIT_SHA=${SOURCE_GIT_SHA}
WORKDIR /src
# Dependencies first, so a source change does not rebuild them: the real manifest (its benchmarks must exist
# for it to parse) over a stub crate.
COPY Cargo.toml Cargo.lock build.rs ./
COPY benches benches
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked --bin hookplane \
    && rm -rf src
# Then the whole context: what the build reads (src, assets, config, docs, build.rs) is whatever
# .dockerignore does not keep out, so a new folder the build needs cannot be forgotten here.
COPY . .
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin hookplane \
    && mkdir -p /out/data && cp target/release/hookplane /out/hookplane

# distroless/cc: glibc and CA certificates, no shell, runs as uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/hookplane /usr/local/bin/hookplane
COPY --from=build --chown=65532:65532 /out/data /data
ENV HOOKPLANE_LISTEN=0.0.0.0:8080 \
    HOOKPLANE_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080
USER nonroot
# No curl in distroless: the binary asks its own /healthz (503 when a critical part has stopped).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/hookplane", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/hookplane"]
CMD ["serve"]
