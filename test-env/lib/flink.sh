# Apache Flink 1.17.2 (the original system's version) from Maven Central, and the small job in
# cli/tests/flink that windows readings as the original did: the windowing conformance
# test runs it (WATTCAST_FLINK_CLASSPATH in test-env/.env).
# shellcheck shell=bash

FLINK_SOURCES=$TEST_ENV_DIR/../cli/tests/flink

# Resolves Flink (first run only) and compiles the job when its source changed; sets FLINK_CLASSPATH.
build_flink_windows() {
  local home=$CACHE_DIR/flink-$FLINK_VERSION
  local digest
  digest=$(cat "$FLINK_SOURCES/pom.xml" "$FLINK_SOURCES/FlinkWindows.java" | sha256sum | cut -c1-16)
  local classes=$home/classes-$digest
  FLINK_CLASSPATH="$classes:$home/lib/*"
  [[ -f $classes/.complete ]] && return 0
  if [[ ! -f $home/lib/.complete ]]; then
    log "resolving Apache Flink $FLINK_VERSION from Maven Central (first run only)"
    rm -rf "${home:?}/lib"
    mvn -B -q -s "$TEST_ENV_DIR/pulsar/settings.xml" -f "$FLINK_SOURCES/pom.xml" \
      -Dmaven.repo.local="$CACHE_DIR/m2" -Dflink.version="$FLINK_VERSION" \
      dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$home/lib" \
      >"$CACHE_DIR/flink-resolve.log" 2>&1 || die "resolving Flink failed; see $CACHE_DIR/flink-resolve.log"
    touch "$home/lib/.complete"
  fi
  log "compiling the Flink windowing job"
  rm -rf "${home:?}"/classes-*
  mkdir -p "$classes"
  javac -nowarn -d "$classes" -cp "$home/lib/*" "$FLINK_SOURCES/FlinkWindows.java" \
    >"$CACHE_DIR/flink-compile.log" 2>&1 || die "compiling FlinkWindows.java failed; see $CACHE_DIR/flink-compile.log"
  touch "$classes/.complete"
}

# The options Flink's own scripts pass on Java 17 (its closure cleaner and serialisers reflect
# into the JDK).
FLINK_JAVA_OPTS=(
  --add-opens java.base/java.lang=ALL-UNNAMED --add-opens java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens java.base/java.util=ALL-UNNAMED --add-opens java.base/java.util.concurrent=ALL-UNNAMED
  --add-opens java.base/java.util.concurrent.atomic=ALL-UNNAMED --add-opens java.base/java.io=ALL-UNNAMED
  --add-opens java.base/java.net=ALL-UNNAMED --add-opens java.base/java.nio=ALL-UNNAMED
  --add-opens java.base/sun.nio.ch=ALL-UNNAMED --add-opens java.base/java.time=ALL-UNNAMED
)

# Writes the command the conformance test runs: FlinkWindows <readings.csv> <out.csv> <strategy>...
write_flink_windows_command() {
  FLINK_WINDOWS_COMMAND=$CACHE_DIR/flink-$FLINK_VERSION/flink-windows
  {
    printf '#!/usr/bin/env bash\n# Written by test-env/up: runs the Flink windowing job (cli/tests/flink).\n'
    printf 'exec java -Xmx512m'
    printf ' %q' "${FLINK_JAVA_OPTS[@]}" -cp "$FLINK_CLASSPATH" io.wattcast.conformance.FlinkWindows
    printf ' "$@"\n'
  } >"$FLINK_WINDOWS_COMMAND"
  chmod +x "$FLINK_WINDOWS_COMMAND"
}
