#!/usr/bin/env bash
# Builds (if needed) and runs the Sluice example Jetty backend in the foreground.
#
#   examples/jetty/run.sh [--port N] [--name NAME] [--host H] [--idle-timeout-ms N]
#
# Default port 8080 (--port 0 picks a free one; the chosen port is in the startup line).
# Prints "sluice-example-backend NAME listening on HOST:PORT" on stdout once ready.
# The java process replaces this shell (exec), so SIGTERM to this PID stops Jetty cleanly.
#
# Environment:
#   SLUICE_JETTY_BUILD_DIR  where classes go (default: examples/jetty/build)
#   JAVA_OPTS               JVM options, replacing the defaults below
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${SLUICE_JETTY_BUILD_DIR:-$here/build}"

command -v java >/dev/null 2>&1 || {
  echo "examples/jetty/run.sh: java not found on PATH" >&2
  echo "examples/jetty/run.sh: install the Debian packages: apt-get install default-jdk-headless jetty9" >&2
  exit 1
}

"$here/build.sh" "$out"

have_port=0
for a in "$@"; do
  case "$a" in
    --port|--port=*) have_port=1 ;;
  esac
done
if [ "$have_port" -eq 0 ]; then
  set -- --port 8080 "$@"
fi

# Jetty logs through its own StdErrLog (no slf4j on the classpath): INFO and above on stderr.
# Default JVM options keep the footprint small (tests start several backends; every body is
# streamed, so 256 MiB of heap is plenty). Not -XX:TieredStopAtLevel=1: it shaves ~50 ms off
# start-up but makes /upload ~7x slower (the SHA-256 intrinsics are C2-only).
# JAVA_OPTS=' ' (a blank) runs with the JVM's own defaults.
# shellcheck disable=SC2086
exec java \
  ${JAVA_OPTS:--XX:+UseSerialGC -Xss512k -Xmx256m} \
  -Dorg.eclipse.jetty.util.log.class=org.eclipse.jetty.util.log.StdErrLog \
  -Dorg.eclipse.jetty.LEVEL=INFO \
  -cp "$out:$(cat "$out/runtime-classpath")" \
  SluiceExampleBackend "$@"
