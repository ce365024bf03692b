# The local node: one long-lived process holds a network namespace and a private mount namespace;
# every daemon (etcd, the control plane, containerd, kubelet, kube-proxy, CoreDNS, the volume
# provisioner and kube-router's NetworkPolicy controller) is started inside both with nsenter, so
# the cluster's addresses (198.18.0.0/15), routes, iptables rules and mounts never reach the
# machine, and `down` can stop each by pid.
# shellcheck shell=bash
# shellcheck disable=SC2034,SC2153 # variables set here are used by the scripts that source this file; NODE_BIN and the like come from build.sh

NODE_NAME=wattcast-node
NODE_IP=198.18.255.1
POD_CIDR=198.18.0.0/24
POD_GATEWAY=198.18.0.1
SERVICE_CIDR=198.19.0.0/16
KUBERNETES_SERVICE_IP=198.19.0.1
DNS_SERVICE_IP=198.19.0.10
# The kubelet's cgroup parent, created in every cgroup v1 hierarchy (and the v2 one).
CGROUP_ROOT=wattcast-node

NODE_DIR=${WATTCAST_NODE_DIR:-/var/lib/wattcast-node}
PKI=$NODE_DIR/pki
PIDS=$NODE_DIR/pids
LOGS=$NODE_DIR/logs
CONF=$NODE_DIR/conf
HOLDER_PID_FILE=$PIDS/holder
CONTAINERD_SOCKET=$NODE_DIR/containerd/containerd.sock
# Paths outside NODE_DIR that the kubelet and CNI use whatever they are told; removed by `down`
# when `up` created them.
FOREIGN_PATHS=(/var/log/containers /var/lib/cni /run/containerd)

holder_pid() { [[ -f $HOLDER_PID_FILE ]] && cat "$HOLDER_PID_FILE"; }
holder_alive() { local pid; pid=$(holder_pid) && kill -0 "$pid" 2>/dev/null; }

# in_node COMMAND...: runs COMMAND in the node's network and mount namespaces.
in_node() { nsenter -t "$(holder_pid)" -m -n -- "$@"; }
# in_node_net COMMAND...: runs COMMAND in the node's network namespace only (host files).
in_node_net() { nsenter -t "$(holder_pid)" -n -- "$@"; }

# daemon_alive NAME: whether the daemon start_daemon NAME started is running.
daemon_alive() { [[ -f $PIDS/$1 ]] && kill -0 "$(cat "$PIDS/$1")" 2>/dev/null; }

# start_daemon NAME BINARY ARGS...: starts a daemon in the node unless its pid is alive. Its
# command is kept so that wait_for_daemon can start it again; its log is appended to.
start_daemon() {
  local name=$1; shift
  daemon_alive "$name" && return 0
  printf '%s\0' "$@" >"$PIDS/$name.command"
  printf '%s starting %s\n' "$(date -u +%FT%TZ)" "$name" >>"$LOGS/$name.log"
  nsenter -t "$(holder_pid)" -m -n -- "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$PIDS/$name"
  log "started $name (pid $!, log $LOGS/$name.log)"
}

# wait_for_daemon TIMEOUT "NAME [NEEDED...]" CHECK...: waits until CHECK passes. NAME, or a daemon
# it needs, that exits first is started again (each at most twice, as a supervisor would), and the
# end of its log is printed each time.
wait_for_daemon() {
  local timeout=$1 names=$2; shift 2
  local deadline=$(( $(date +%s) + timeout )) name command
  local -A restarts=()
  until "$@" >/dev/null 2>&1; do
    for name in $names; do
      daemon_alive "$name" && continue
      log "$name exited; the end of $LOGS/$name.log:"
      print_log_tail "$name"
      (( ${restarts[$name]:-0} < 2 )) || return 1
      restarts[$name]=$(( ${restarts[$name]:-0} + 1 ))
      mapfile -d '' -t command <"$PIDS/$name.command"
      start_daemon "$name" "${command[@]}"
    done
    (( $(date +%s) < deadline )) || return 1
    sleep 1
  done
  log "${names%% *} is ready ($(elapsed)s)"
}

# print_log_tail NAME: the last lines of a daemon's log, on stderr (CI keeps only the output).
print_log_tail() { tail -n "${2:-25}" "$LOGS/$1.log" 2>/dev/null | sed "s/^/  [$1] /" >&2 || true; }

# node_failed MESSAGE NAME...: says which of the named daemons run, prints their logs' ends, dies.
node_failed() {
  local message=$1 name; shift
  for name in "$@"; do
    if daemon_alive "$name"; then log "$name is running (pid $(cat "$PIDS/$name"))"; else log "$name is not running"; fi
    print_log_tail "$name" 40
  done
  die "$message; the logs are in $LOGS"
}

# The namespaces, the node's addresses and routes, and the kubelet's kernel settings.
start_holder() {
  holder_alive && return 0
  mkdir -p "$PIDS" "$LOGS" "$CONF"
  local path
  : >"$NODE_DIR/foreign-paths"
  for path in "${FOREIGN_PATHS[@]}"; do
    [[ -e $path ]] || echo "$path" >>"$NODE_DIR/foreign-paths"
  done
  unshare --net --mount --propagation slave -- /bin/sh -c 'mount --make-rshared / && exec sleep infinity' \
    </dev/null >/dev/null 2>&1 &
  echo $! >"$HOLDER_PID_FILE"
  wait_until 10 "node namespaces" in_node true || die "could not create the node's namespaces"
  in_node_net ip link set lo up
  # A bridge without ports carries the node's address (this kernel has no dummy links).
  in_node_net ip link add wc-node type bridge
  in_node_net ip addr add "$NODE_IP/24" dev wc-node
  in_node_net ip link set wc-node up
  # Locally generated ClusterIP traffic needs a route before kube-proxy's DNAT applies.
  in_node_net ip route add "$SERVICE_CIDR" dev wc-node
  # The kubelet insists on these kernel values; inside the private mount namespace it reads
  # them from read-only files, and the machine's own values stay as they are.
  local sysctl value
  for sysctl in vm/overcommit_memory=1 kernel/panic=10 kernel/panic_on_oops=1; do
    value=${sysctl#*=}; sysctl=${sysctl%=*}
    echo "$value" >"$CONF/sysctl-${sysctl//\//-}"
    in_node mount --bind "$CONF/sysctl-${sysctl//\//-}" "/proc/sys/$sysctl"
    in_node mount -o remount,bind,ro "/proc/sys/$sysctl"
  done
}

make_cgroups() {
  local hierarchy
  for hierarchy in /sys/fs/cgroup/*/; do
    hierarchy=${hierarchy%/}
    [[ -d $hierarchy/$CGROUP_ROOT ]] && continue
    mkdir "$hierarchy/$CGROUP_ROOT"
    if [[ -f $hierarchy/cpuset.cpus ]]; then
      cat "$hierarchy/cpuset.cpus" >"$hierarchy/$CGROUP_ROOT/cpuset.cpus"
      cat "$hierarchy/cpuset.mems" >"$hierarchy/$CGROUP_ROOT/cpuset.mems"
    fi
  done
}

# Removes the node's cgroups, deepest first (each must be empty by then).
remove_cgroups() {
  local hierarchy
  for hierarchy in /sys/fs/cgroup/*/; do
    [[ -d $hierarchy$CGROUP_ROOT ]] || continue
    find "$hierarchy$CGROUP_ROOT" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}

write_configs() {
  mkdir -p "$CONF/cni" "$NODE_DIR/cni" "$NODE_DIR/volumes"
  cat >"$CONF/cni/10-wattcast.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "wattcast",
  "plugins": [
    {
      "type": "bridge", "bridge": "wc-cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$NODE_DIR/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$POD_GATEWAY"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
  cat >"$CONF/containerd.toml" <<TOML
version = 3
root = "$NODE_DIR/containerd/root"
state = "$NODE_DIR/containerd/state"
[grpc]
  address = "$CONTAINERD_SOCKET"
[ttrpc]
  address = "$CONTAINERD_SOCKET.ttrpc"
[debug]
  address = "$CONTAINERD_SOCKET.debug"
[plugins.'io.containerd.nri.v1.nri']
  disable = true
[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "$PAUSE_IMAGE"
[plugins.'io.containerd.cri.v1.runtime']
  enable_selinux = false
  # The machine's capability set lacks CAP_SYS_RESOURCE: no negative oom_score_adj.
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "$CONF/cni"
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      BinaryName = "$NODE_BIN/runc"
      SystemdCgroup = false
[plugins.'io.containerd.grpc.v1.cri']
  netns_mounts_under_state_dir = true
TOML
  cat >"$CONF/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine mounts cgroup v1 (hybrid); Kubernetes 1.35+ refuses it unless told.
failCgroupV1: false
failSwapOn: false
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_ROOT
containerRuntimeEndpoint: unix://$CONTAINERD_SOCKET
address: $NODE_IP
readOnlyPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
clusterDomain: cluster.local
clusterDNS: [$DNS_SERVICE_IP]
resolvConf: ""
podLogsDir: $NODE_DIR/pod-logs
serializeImagePulls: false
# A shared disk: evict only when it is really full, and keep locally built images.
evictionHard: {memory.available: 200Mi, nodefs.available: 2%, imagefs.available: 2%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
YAML
  cat >"$CONF/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $PKI/kube-proxy.kubeconfig}
hostnameOverride: $NODE_NAME
bindAddress: $NODE_IP
clusterCIDR: $POD_CIDR
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
# Leave the machine's global conntrack table size and kube-proxy's own oom_score_adj alone.
conntrack: {maxPerCore: 0, min: 0}
oomScoreAdj: 0
YAML
  cat >"$CONF/Corefile" <<COREFILE
.:53 {
    bind $NODE_IP
    errors
    ready 127.0.0.1:8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $PKI/coredns.kubeconfig $NODE_NAME
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 30
    loop
}
COREFILE
}

start_control_plane() {
  start_daemon etcd "$KUBE_ASSETS/etcd" --name "$NODE_NAME" --data-dir "$NODE_DIR/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster "$NODE_NAME=http://127.0.0.1:2380" --quota-backend-bytes 2147483648
  start_daemon kube-apiserver "$KUBE_ASSETS/kube-apiserver" --etcd-servers http://127.0.0.1:2379 \
    --bind-address "$NODE_IP" --advertise-address "$NODE_IP" --secure-port 6443 \
    --service-cluster-ip-range "$SERVICE_CIDR" --allow-privileged=true \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --client-ca-file "$PKI/ca.crt" --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --service-account-key-file "$PKI/service-account.pub" --service-account-signing-key-file "$PKI/service-account.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --kubelet-preferred-address-types InternalIP
  wait_for_daemon 60 etcd in_node_net curl -fsS http://127.0.0.1:2379/health \
    || node_failed "etcd did not become healthy" etcd
  wait_for_daemon 120 "kube-apiserver etcd" in_node_net "$KUBE_ASSETS/kubectl" --kubeconfig "$PKI/admin.kubeconfig" get --raw /readyz \
    || node_failed "kube-apiserver did not become ready" etcd kube-apiserver
  start_daemon kube-controller-manager "$KUBE_ASSETS/kube-controller-manager" \
    --kubeconfig "$PKI/controller-manager.kubeconfig" --authentication-kubeconfig "$PKI/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$PKI/controller-manager.kubeconfig" --bind-address 127.0.0.1 \
    --service-cluster-ip-range "$SERVICE_CIDR" --cluster-cidr "$POD_CIDR" --allocate-node-cidrs=false \
    --root-ca-file "$PKI/ca.crt" --service-account-private-key-file "$PKI/service-account.key" \
    --use-service-account-credentials=true --leader-elect=false
  start_daemon kube-scheduler "$KUBE_ASSETS/kube-scheduler" --kubeconfig "$PKI/scheduler.kubeconfig" \
    --authentication-kubeconfig "$PKI/scheduler.kubeconfig" --authorization-kubeconfig "$PKI/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false
}

start_node_agents() {
  start_daemon containerd "$NODE_BIN/containerd" --config "$CONF/containerd.toml"
  wait_for_daemon 60 containerd in_node "$NODE_BIN/ctr" --address "$CONTAINERD_SOCKET" version \
    || node_failed "containerd did not start" containerd
  start_daemon kubelet "$KUBE_ASSETS/kubelet" --config "$CONF/kubelet.yaml" \
    --kubeconfig "$PKI/kubelet.kubeconfig" --root-dir "$NODE_DIR/kubelet" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP"
  start_daemon kube-proxy "$KUBE_ASSETS/kube-proxy" --config "$CONF/kube-proxy.yaml"
}

# Node-level services that need the API: cluster DNS and the volume provisioner.
start_cluster_services() {
  system_manifest | kubectl_node apply -f - >/dev/null
  start_daemon coredns "$NODE_BIN/coredns" -conf "$CONF/Corefile"
  # The CNI bridge admits everything; kube-router's policy controller alone enforces
  # NetworkPolicies with iptables and ipsets (no routing, no service proxy: kube-proxy does that).
  start_daemon kube-router "$NODE_BIN/kube-router" --kubeconfig "$PKI/kube-router.kubeconfig" \
    --hostname-override "$NODE_NAME" --run-firewall=true --run-router=false --run-service-proxy=false \
    --enable-cni=false --enable-pod-egress=false --service-cluster-ip-range "$SERVICE_CIDR" \
    --health-port 20244 --metrics-port 0
  start_daemon local-path-provisioner "$NODE_BIN/local-path-provisioner" start \
    --kubeconfig "$PKI/local-path.kubeconfig" --namespace local-path-storage \
    --helper-image "$BASE_IMAGE" --service-account-name local-path-provisioner
  wait_for_daemon 60 coredns in_node_net curl -fsS http://127.0.0.1:8181/ready \
    || node_failed "CoreDNS did not become ready" coredns kube-apiserver
  wait_for_daemon 60 kube-router in_node_net curl -fsS http://127.0.0.1:20244/healthz \
    || node_failed "kube-router did not become healthy" kube-router kube-apiserver
}

wait_for_node() {
  # `kubectl wait` fails with NotFound until the kubelet has registered the Node.
  wait_until 120 "node registration" kubectl_node get node "$NODE_NAME" \
    || node_failed "the kubelet did not register" kubelet containerd kube-apiserver
  kubectl_node wait --for=condition=Ready "node/$NODE_NAME" --timeout=120s >/dev/null \
    || node_failed "the node did not become Ready" kubelet containerd
  log "node $NODE_NAME is Ready ($(elapsed)s)"
}

kubectl_node() { in_node_net "$KUBE_ASSETS/kubectl" --kubeconfig "$PKI/admin.kubeconfig" "$@"; }

# Stops every process `up` started, by pid: pods first (through containerd), then the daemons.
stop_node() {
  local name pid
  if holder_alive; then
    stop_named kubelet
    if [[ -f $PIDS/containerd ]] && kill -0 "$(cat "$PIDS/containerd")" 2>/dev/null; then
      local ctr=("$NODE_BIN/ctr" --address "$CONTAINERD_SOCKET" -n k8s.io) task
      for task in $(in_node "${ctr[@]}" tasks ls -q 2>/dev/null); do
        in_node "${ctr[@]}" tasks kill -s SIGKILL "$task" >/dev/null 2>&1 || true
      done
      sleep 1
      for task in $(in_node "${ctr[@]}" tasks ls -q 2>/dev/null); do
        in_node "${ctr[@]}" tasks delete -f "$task" >/dev/null 2>&1 || true
      done
    fi
  fi
  for name in kube-router local-path-provisioner coredns kube-proxy kube-scheduler kube-controller-manager kube-apiserver etcd containerd; do
    stop_named "$name"
  done
  # Anything still in the node's cgroups was started by it (containers whose shim is gone too).
  local procs
  for procs in /sys/fs/cgroup/pids/$CGROUP_ROOT; do
    [[ -d $procs ]] || continue
    find "$procs" -name cgroup.procs -exec cat {} + 2>/dev/null | while read -r pid; do kill -9 "$pid" 2>/dev/null; done
  done
  # Shims outlive containerd (their bundles are in the node's mount namespace): ours run our
  # binary with our socket.
  for pid in $(pgrep -f -- "-address $CONTAINERD_SOCKET" || true); do
    [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$NODE_BIN/containerd-shim-runc-v2" ]] && kill -9 "$pid" 2>/dev/null
  done
  stop_named holder
}

stop_named() {
  local name=$1 pidfile=$PIDS/$1 pid
  [[ -f $pidfile ]] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
    log "stopped $name (pid $pid)"
  fi
  rm -f "$pidfile" "$pidfile.command"
}

remove_node_files() {
  local path
  if [[ -f $NODE_DIR/foreign-paths ]]; then
    while read -r path; do rm -rf "$path"; done <"$NODE_DIR/foreign-paths"
  fi
  rm -rf "$NODE_DIR"
}

# user_binding NAME: binds the ClusterRole NAME to the user NAME (a node service's certificate).
user_binding() {
  cat <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "$1"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "$1"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "$1"}]
YAML
}

# What the node-level services need in the API: RBAC for their certificates' users, the
# provisioner's namespace, helper-pod template and default StorageClass, and the kube-dns Service
# whose one endpoint is CoreDNS on the node's address.
system_manifest() {
  cat <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "wattcast:kube-router"}
rules:
- apiGroups: [""]
  resources: [pods, namespaces, nodes, services, endpoints]
  verbs: [get, list, watch]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
$(user_binding "wattcast:kube-router")
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "wattcast:coredns"}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
$(user_binding "wattcast:coredns")
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "wattcast:local-path-provisioner"}
rules:
- apiGroups: [""]
  resources: [nodes, persistentvolumeclaims, configmaps, pods, pods/log]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [update, patch]
- apiGroups: [""]
  resources: [pods]
  verbs: [create, delete]
- apiGroups: [""]
  resources: [persistentvolumes]
  verbs: [get, list, watch, create, delete, patch, update]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [storage.k8s.io]
  resources: [storageclasses]
  verbs: [get, list, watch]
---
$(user_binding "wattcast:local-path-provisioner")
---
apiVersion: v1
kind: Namespace
metadata: {name: local-path-storage}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: local-path-provisioner, namespace: local-path-storage}
automountServiceAccountToken: false
---
apiVersion: v1
kind: ConfigMap
metadata: {name: local-path-config, namespace: local-path-storage}
data:
  config.json: |-
    {"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": ["$NODE_DIR/volumes"]}]}
  setup: |-
    #!/bin/sh
    set -eu
    mkdir -m 0777 -p "\$VOL_DIR"
  teardown: |-
    #!/bin/sh
    set -eu
    rm -rf "\$VOL_DIR"
  helperPod.yaml: |-
    apiVersion: v1
    kind: Pod
    metadata: {name: helper-pod}
    spec:
      priorityClassName: system-node-critical
      automountServiceAccountToken: false
      containers:
      - name: helper-pod
        image: $BASE_IMAGE
        imagePullPolicy: Never
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local-path
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: rancher.io/local-path
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Delete
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  clusterIP: $DNS_SERVICE_IP
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-node
  namespace: kube-system
  labels: {kubernetes.io/service-name: kube-dns, endpointslice.kubernetes.io/managed-by: wattcast-local-cluster}
addressType: IPv4
endpoints: [{addresses: ["$NODE_IP"], conditions: {ready: true}}]
ports:
- {name: dns, port: 53, protocol: UDP}
- {name: dns-tcp, port: 53, protocol: TCP}
YAML
}
