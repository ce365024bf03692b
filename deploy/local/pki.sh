# The local node's certificates: one CA, a serving certificate for the API server, a client
# certificate (and kubeconfig) for each component, and the service-account signing key.
# shellcheck shell=bash

# issue_cert NAME CN ORG [SAN...]: NAME.crt/NAME.key under $PKI signed by the cluster CA.
issue_cert() {
  local name=$1 cn=$2 org=$3; shift 3
  local subject="/CN=$cn"
  [[ -n $org ]] && subject="/O=$org$subject"
  local ext=$PKI/$name.ext
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if (($# > 0)); then
      echo "extendedKeyUsage=serverAuth,clientAuth"
      local sans=() san
      for san in "$@"; do
        if [[ $san =~ ^[0-9.]+$ ]]; then sans+=("IP:$san"); else sans+=("DNS:$san"); fi
      done
      echo "subjectAltName=$(IFS=,; echo "${sans[*]}")"
    else
      echo "extendedKeyUsage=clientAuth"
    fi
  } >"$ext"
  openssl req -new -newkey rsa:2048 -nodes -keyout "$PKI/$name.key" -subj "$subject" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 30 -sha256 -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$ext"
}

# write_kubeconfig FILE CERT-NAME: a kubeconfig for the API server with that client certificate.
write_kubeconfig() {
  local file=$1 cert=$2
  cat >"$file" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: $NODE_NAME
  cluster:
    server: https://$NODE_IP:6443
    certificate-authority: $PKI/ca.crt
users:
- name: $cert
  user:
    client-certificate: $PKI/$cert.crt
    client-key: $PKI/$cert.key
contexts:
- name: $NODE_NAME
  context: {cluster: $NODE_NAME, user: $cert}
current-context: $NODE_NAME
KUBECONFIG
}

make_pki() {
  [[ -f $PKI/.complete ]] && return 0
  rm -rf "$PKI"
  mkdir -p "$PKI"
  chmod 700 "$PKI"
  openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$PKI/ca.key" -subj "/CN=wattcast-local-ca" \
    -days 30 -sha256 -out "$PKI/ca.crt" 2>/dev/null
  issue_cert apiserver kube-apiserver "" "$NODE_IP" "$KUBERNETES_SERVICE_IP" 127.0.0.1 localhost \
    kubernetes kubernetes.default kubernetes.default.svc kubernetes.default.svc.cluster.local
  # The API server's client to kubelets: `kubectl logs/exec` need nodes/proxy.
  issue_cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
  issue_cert admin wattcast-admin system:masters
  issue_cert controller-manager system:kube-controller-manager ""
  issue_cert scheduler system:kube-scheduler ""
  issue_cert kubelet "system:node:$NODE_NAME" system:nodes
  issue_cert kube-proxy system:kube-proxy ""
  issue_cert coredns wattcast:coredns ""
  issue_cert local-path wattcast:local-path-provisioner ""
  issue_cert kube-router wattcast:kube-router ""
  openssl genrsa -out "$PKI/service-account.key" 2048 2>/dev/null
  openssl rsa -in "$PKI/service-account.key" -pubout -out "$PKI/service-account.pub" 2>/dev/null
  local component
  for component in admin controller-manager scheduler kubelet kube-proxy coredns local-path kube-router; do
    write_kubeconfig "$PKI/$component.kubeconfig" "$component"
  done
  touch "$PKI/.complete"
}
