# Apache Pulsar standalone assembled from Maven Central: broker + embedded BookKeeper + RocksDB
# metadata, functions worker and stream storage off, heap bounded; 6650 binary, 8080 admin, and
# with the test env's certificate 6651 (pulsar+ssl) and 8443 (https admin).
# shellcheck shell=bash

PULSAR_HOME=$CACHE_DIR/pulsar-$PULSAR_VERSION
PULSAR_DIR=$RUN_DIR/pulsar

install_pulsar() {
  [[ -f $PULSAR_HOME/.complete ]] && return 0
  log "resolving Apache Pulsar $PULSAR_VERSION from Maven Central (first run only)"
  rm -rf "$PULSAR_HOME"
  mkdir -p "$PULSAR_HOME"
  mvn -B -q -s "$TEST_ENV_DIR/pulsar/settings.xml" -f "$TEST_ENV_DIR/pulsar/pom.xml" \
    -Dmaven.repo.local="$CACHE_DIR/m2" -Dpulsar.version="$PULSAR_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$PULSAR_HOME/lib" \
    >"$CACHE_DIR/pulsar-resolve.log" 2>&1 || die "resolving Pulsar failed; see $CACHE_DIR/pulsar-resolve.log"
  touch "$PULSAR_HOME/.complete"
  log "pulsar resolved ($(elapsed)s)"
}

pulsar_healthy() {
  [[ $(curl -fsS -m 5 "http://127.0.0.1:$PULSAR_ADMIN_PORT/admin/v2/brokers/health" 2>/dev/null) == ok ]]
}

start_pulsar() {
  local pidfile=$PULSAR_DIR/pulsar.pid
  if pid_alive "$pidfile" && pulsar_healthy && port_open "$PULSAR_TLS_PORT" && [[ -z ${TLS_FILES_CHANGED:-} ]]; then
    log "pulsar already running"
    return 0
  fi
  stop_pidfile pulsar "$pidfile"
  port_open "$PULSAR_PORT" && die "port $PULSAR_PORT is taken by another process; stop it or point the tests at your Pulsar (docs/contributing/testing.md)"
  port_open "$PULSAR_BOOKIE_PORT" && die "port $PULSAR_BOOKIE_PORT (Pulsar's embedded bookie) is taken by another process"
  install_pulsar
  # A fresh data directory each start: tests keep nothing in Pulsar between runs, and a broker
  # killed uncleanly (a session ending, a crash) can leave BookKeeper ledgers it cannot recover.
  # The fault matrix restarts a crashed broker on its data (PULSAR_KEEP_DATA=1, test-env/fault).
  [[ -n ${PULSAR_KEEP_DATA:-} ]] || rm -rf "$PULSAR_DIR/data"
  mkdir -p "$PULSAR_DIR/data"
  copy_server_files "$PULSAR_DIR" ""
  cat >"$PULSAR_DIR/standalone.conf" <<CONF
# Written by test-env/up.
clusterName=standalone
bindAddress=127.0.0.1
advertisedAddress=127.0.0.1
brokerServicePort=$PULSAR_PORT
webServicePort=$PULSAR_ADMIN_PORT
brokerServicePortTls=$PULSAR_TLS_PORT
webServicePortTls=$PULSAR_ADMIN_TLS_PORT
tlsCertificateFilePath=$PULSAR_DIR/server.crt
tlsKeyFilePath=$PULSAR_DIR/server.key
tlsTrustCertsFilePath=$PULSAR_DIR/ca.crt
tlsAllowInsecureConnection=false
# The embedded bookie on a fixed port (Pulsar's BKCluster uses the standalone port only with
# this set): with a random one, a broker restarted on its data finds its ledgers on a bookie
# address that no longer exists and refuses every write ("Not enough non-faulty bookies").
allowEphemeralPorts=true
managedLedgerDefaultEnsembleSize=1
managedLedgerDefaultWriteQuorum=1
managedLedgerDefaultAckQuorum=1
functionsWorkerEnabled=false
allowAutoTopicCreation=true
allowAutoTopicCreationType=non-partitioned
brokerDeleteInactiveTopicsEnabled=false
# Small machine: fewer threads and caches.
numIOThreads=2
# Each of the two web connectors (8080, 8443) needs threads of its own.
numHttpServerThreads=8
# The windower acknowledges a reading only once its window is stored, so its subscription always
# holds up to a minute of readings unacknowledged, and at each minute boundary it falls a second
# or so behind while it emits every device's window. Pulsar's defaults then stop caching for it:
# a cursor more than 1,000 entries behind counts as backlogged and gets no cache, and cached
# entries go after 1 s. Every read became a BookKeeper read, slower than 5,000 readings a second
# arrive, and the windower never caught up (the soak in docs/performance.md: window latency grew
# to 50 s within 20 minutes). So a cursor up to 5 minutes of readings behind stays cached, and
# entries stay for a minute, within a cache sized for that (direct memory is 512 MiB).
managedLedgerCursorBackloggedThreshold=1500000
managedLedgerCacheEvictionTimeThresholdMillis=60000
managedLedgerCacheSizeMB=192
dbStorage_writeCacheMaxSizeMb=32
dbStorage_readAheadCacheMaxSizeMb=32
dbStorage_rocksDB_blockCacheSize=16777216
journalMaxSizeMB=256
# The bookie turns read-only at 95 % disk use by default, which a big shared disk with a large
# cargo target directory reaches long before the few megabytes the tests write run out.
diskUsageThreshold=0.99
diskUsageWarnThreshold=0.98
diskUsageLwmThreshold=0.98
CONF
  (
    cd "$PULSAR_DIR" || exit 1
    # The heap is committed and touched at start (-Xms = -Xmx, as Pulsar's own defaults have it):
    # its footprint does not creep up for the first hour, so `make soak` sees growth, not sizing.
    # The GC log shows any pause behind a latency spike. WATTCAST_PULSAR_JAVA_OPTS adds options
    # (`make soak` on a test env started with `-XX:NativeMemoryTracking=summary` can say where
    # memory outside the heap goes: `jcmd PID VM.native_memory summary.diff`).
    # shellcheck disable=SC2086 # the extra options are words
    nohup java -Xms1g -Xmx1g -XX:+AlwaysPreTouch -XX:MaxDirectMemorySize=512m -XX:+UseG1GC \
      "-Xlog:gc:file=$PULSAR_DIR/gc.log:uptime,level:filecount=2,filesize=20m" ${WATTCAST_PULSAR_JAVA_OPTS:-} \
      --add-opens java.base/java.io=ALL-UNNAMED --add-opens java.base/java.util.zip=ALL-UNNAMED \
      --add-opens java.base/sun.net=ALL-UNNAMED --add-opens java.management/sun.management=ALL-UNNAMED \
      --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED \
      --add-opens java.base/jdk.internal.platform=ALL-UNNAMED \
      -Dpulsar.allocator.exit_on_oom=true -Dio.netty.recycler.maxCapacityPerThread=4096 \
      -cp "$PULSAR_HOME/lib/*" org.apache.pulsar.PulsarStandaloneStarter \
      --config "$PULSAR_DIR/standalone.conf" --no-functions-worker --no-stream-storage \
      --bookkeeper-dir "$PULSAR_DIR/data/bookkeeper" --metadata-dir "$PULSAR_DIR/data/metadata" \
      --bookkeeper-port "$PULSAR_BOOKIE_PORT" \
      >"$PULSAR_DIR/pulsar.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
  )
  wait_until 180 pulsar pulsar_healthy || die "pulsar did not become healthy; see $PULSAR_DIR/pulsar.log"
}

stop_pulsar() { stop_pidfile pulsar "$PULSAR_DIR/pulsar.pid"; }
