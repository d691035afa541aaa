# syntax=docker/dockerfile:1
#
# One small image holding the one `bookinfo` binary; the arguments pick the service:
#   docker build -t bookinfo:0.1.0 .
#   docker run --rm -p 9080:9080 bookinfo:0.1.0 serve productpage
# `curl` in the image is the same binary under that name (a plain-HTTP subset of curl), for the
# `kubectl exec ... -- curl ...` commands of Istio's documentation.
# k8s/test/image builds it and runs it as the manifests in k8s/ do.

FROM rust:1.95-slim-bookworm AS chef
# cargo-chef turns the workspace's manifests into a recipe of what the dependencies need, so
# that they build in a layer of their own, reused until a manifest or Cargo.lock changes.
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS plan
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=plan /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --bin bookinfo --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --bin bookinfo \
 && mkdir /out \
 && cp target/release/bookinfo /out/bookinfo \
 && ln -s bookinfo /out/curl

# glibc and nothing else (no shell); runs as the numeric non-root user 65532, which
# Kubernetes' runAsNonRoot can check.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
EXPOSE 9080
ENTRYPOINT ["/usr/local/bin/bookinfo"]
CMD ["serve", "productpage"]
