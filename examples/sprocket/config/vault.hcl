# OpenBao / Vault server: raft integrated storage on the service's volume.
ui            = true
api_addr      = "http://vault:8200"
cluster_addr  = "http://vault:8201"

storage "raft" {
  path    = "/openbao/file"
  node_id = "vault-1"
  # Raft's own timing at its fastest (the default, 5, is for minimal servers; 1 is what the
  # OpenBao and Vault docs recommend for production): the single node elects itself in ~1 s
  # instead of ~5 s after init and after every unseal.
  performance_multiplier = 1
}

listener "tcp" {
  address     = "0.0.0.0:8200"
  tls_disable = 1
}
