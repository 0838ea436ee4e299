#!/usr/bin/env bash
# Compiles the Sluice example Jetty backend against Debian's Jetty 9.4 jars.
#
#   examples/jetty/build.sh [OUT_DIR]      (default: examples/jetty/build)
#
# Produces OUT_DIR/SluiceExampleBackend*.class and OUT_DIR/runtime-classpath (the jar part of
# the classpath, one line, ':'-separated) which run.sh uses. A no-op when the class file is
# newer than the source. Safe to run concurrently (flock on OUT_DIR/.lock).
#
# Environment: JAVA_SHARE_DIR overrides /usr/share/java.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/src/SluiceExampleBackend.java"
out="${1:-$here/build}"
java_dir="${JAVA_SHARE_DIR:-/usr/share/java}"
main_class="$out/SluiceExampleBackend.class"

fail() {
  echo "examples/jetty/build.sh: $*" >&2
  echo "examples/jetty/build.sh: install the Debian packages: apt-get install default-jdk-headless jetty9" >&2
  exit 1
}

command -v javac >/dev/null 2>&1 || fail "javac not found on PATH"

# Every jar the embedded server + ServletContextHandler + Jetty's own WebSocket API (/ws/echo)
# + the HTTP/2 cleartext (h2c) connection factory need (no JSP, no JSR 356 javax.websocket, no
# JMX, no WebSocket client, no ALPN: the example serves no TLS). The http2 jars come with
# libjetty9-java, which jetty9 depends on.
jars=()
for j in jetty9-server jetty9-servlet jetty9-security jetty9-http jetty9-io jetty9-util \
         jetty9-websocket-api jetty9-websocket-common jetty9-websocket-servlet jetty9-websocket-server \
         jetty9-http2-server jetty9-http2-common jetty9-http2-hpack; do
  [ -f "$java_dir/$j.jar" ] || fail "missing $java_dir/$j.jar"
  jars+=("$java_dir/$j.jar")
done
# Jetty 9.4 implements Servlet 3.1; Debian 12 ships the 4.0.1 API jar (libservlet-api-java,
# pulled in by jetty9), which is a compatible superset. Prefer a 3.1 jar if one is installed.
servlet_api=""
for j in servlet-api-3.1.jar servlet-api.jar servlet-api-4.0.1.jar; do
  if [ -f "$java_dir/$j" ]; then servlet_api="$java_dir/$j"; break; fi
done
[ -n "$servlet_api" ] || fail "missing the servlet API jar ($java_dir/servlet-api*.jar)"
jars+=("$servlet_api")
classpath="$(IFS=:; echo "${jars[*]}")"

[ -f "$src" ] || { echo "examples/jetty/build.sh: missing source $src" >&2; exit 1; }
mkdir -p "$out"

build() {
  if [ -f "$main_class" ] && [ "$main_class" -nt "$src" ] \
     && [ -f "$out/runtime-classpath" ] && [ "$(cat "$out/runtime-classpath")" = "$classpath" ]; then
    return 0 # up to date
  fi
  # Compile into a scratch dir, then swap, so a failed build never leaves a half-updated set.
  local tmp
  tmp="$(mktemp -d "$out/.javac.XXXXXX")"
  trap 'rm -rf "$tmp"' RETURN
  javac --release 17 -Xlint:all,-serial -Werror -encoding UTF-8 -cp "$classpath" -d "$tmp" "$src"
  rm -f "$out"/SluiceExampleBackend*.class
  mv "$tmp"/*.class "$out"/
  printf '%s\n' "$classpath" > "$out/runtime-classpath.tmp"
  mv "$out/runtime-classpath.tmp" "$out/runtime-classpath"
  echo "examples/jetty/build.sh: built $main_class" >&2
}

if command -v flock >/dev/null 2>&1; then
  exec 9>"$out/.lock"
  flock 9
fi
build
