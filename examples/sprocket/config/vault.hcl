# OpenBao / Vault server: raft integrated storage on the service's volume.
ui            = true
api_addr      = "http://vault:8200"
cluster_addr  = "http://vault:8201"

storage "raft" {
  path    = "/openbao/file"
  node_id = "vault-1"
}

listener "tcp" {
  address     = "0.0.0.0:8200"
  tls_disable = 1
}
