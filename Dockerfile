# Multi-stage build on Debian 12. The build stage runs scripts/bootstrap itself, so it installs
# exactly the packages a developer machine gets (one list, no copy to keep in step: the benchmark
# peers nginx, HAProxy, Caddy and Traffic Server included, so bench/compare runs in it); the
# runtime stage has only the libraries the sluice binary links.
FROM debian:bookworm AS build
WORKDIR /src
COPY scripts/bootstrap scripts/bootstrap
RUN scripts/bootstrap && rm -rf /var/lib/apt/lists/*
COPY CMakeLists.txt ./
COPY include include
COPY src src
COPY tests tests
COPY bench bench
COPY scripts/example-cert scripts/example-cert
RUN scripts/example-cert /src/build/tls
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSLUICE_BUILD_TESTS=OFF -DSLUICE_BUILD_BENCH=OFF \
    && ninja -C build sluice

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
      libssl3 libre2-9 libyaml-cpp0.7 libyaml-0-2 libfmt9 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --no-create-home --shell /usr/sbin/nologin sluice
COPY --from=build /src/build/sluice /usr/local/bin/sluice
COPY config/sluice.yaml /etc/sluice/sluice.yaml
# The example HTTPS listener's self-signed certificate, FOR TESTING ONLY: mount your own over
# /etc/sluice/tls (or point the config elsewhere).
COPY --from=build --chown=sluice /src/build/tls /etc/sluice/tls
USER sluice
EXPOSE 10000 10443
ENTRYPOINT ["/usr/local/bin/sluice"]
CMD ["--config", "/etc/sluice/sluice.yaml"]
