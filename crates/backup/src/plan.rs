//! What a backup of the platform holds, derived from the spec: everything a rebuild needs and
//! nothing it can regenerate. Vault's raft snapshot and its keyring (its keys: already
//! encrypted to the operators), each Redis's data, each RabbitMQ's definitions (users with
//! their password hashes, vhosts, permissions, queues, bindings), each database a consumer's
//! `access` owns on a PostgreSQL, Traefik's ACME account and certificates where Let's Encrypt
//! issues them, and the named volumes the spec marks `backup: true` (n8n's, whose encryption
//! key decrypts the credentials in its database). Images, configs, networks and generated
//! secrets are not in it: the spec and Vault make them again.

use serde::Serialize;
use sprocket_spec::model::{DatastoreKind, Platform, Role, Volume};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Source {
    /// `GET sys/storage/raft/snapshot` of the Vault service.
    VaultSnapshot { service: String },
    /// The Vault keyring file (age-encrypted already; stored as it is).
    VaultKeyring,
    /// A consistent RDB of the Redis service (`BGSAVE`, then its dump file).
    Redis { service: String },
    /// `GET /api/definitions` of the RabbitMQ service's management API.
    RabbitmqDefinitions { service: String },
    /// `pg_dump -Fc` of one database on a PostgreSQL (a service or an external).
    Postgres { datastore: String, database: String },
    /// The edge router's ACME storage (`acme.json`).
    Acme { service: String, path: String },
    /// The files of a named volume marked `backup: true`, as `service` mounts it.
    Volume { service: String, volume: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    /// The manifest's name for it (`postgres:<database>` …), unique in a backup.
    pub component: String,
    /// Its object's extension before `.age`.
    pub extension: &'static str,
    pub source: Source,
}

/// Everything to back up in `p`'s environment, in restore order (Vault first: the others'
/// credentials are kept in it).
pub fn plan(p: &Platform) -> Vec<Item> {
    let mut items = Vec::new();
    if let Some(v) = p.services().find(|s| s.role == Some(Role::Vault)) {
        items.push(Item {
            component: "vault".into(),
            extension: ".snap",
            source: Source::VaultSnapshot {
                service: v.name.clone(),
            },
        });
        items.push(Item {
            component: "vault-keyring".into(),
            extension: ".keyring",
            source: Source::VaultKeyring,
        });
    }
    for s in p.services() {
        let Some(d) = &s.datastore else { continue };
        match d.kind {
            DatastoreKind::Redis => items.push(Item {
                component: format!("redis:{}", s.name),
                extension: ".rdb",
                source: Source::Redis {
                    service: s.name.clone(),
                },
            }),
            DatastoreKind::Rabbitmq => items.push(Item {
                component: format!("rabbitmq:{}", s.name),
                extension: ".json",
                source: Source::RabbitmqDefinitions {
                    service: s.name.clone(),
                },
            }),
            _ => {}
        }
    }
    // Each database a consumer's `access` names, once.
    let mut databases: Vec<(String, String)> = p
        .services()
        .flat_map(|s| &s.access)
        .filter(|a| a.kind == DatastoreKind::Postgres)
        .map(|a| (a.on.clone(), a.database.clone()))
        .collect();
    databases.sort();
    databases.dedup();
    for (datastore, database) in databases {
        items.push(Item {
            component: format!("postgres:{database}"),
            extension: ".dump",
            source: Source::Postgres {
                datastore,
                database,
            },
        });
    }
    // Each data volume once, from the first service that mounts it.
    let mut volumes: Vec<&str> = Vec::new();
    for s in p.services() {
        for v in &s.volumes {
            if let Volume::Named {
                name, backup: true, ..
            } = v
            {
                if !volumes.contains(&name.as_str()) {
                    volumes.push(name);
                    items.push(Item {
                        component: format!("volume:{name}"),
                        extension: ".tar",
                        source: Source::Volume {
                            service: s.name.clone(),
                            volume: name.clone(),
                        },
                    });
                }
            }
        }
    }
    if let Some(edge) = p.edge().filter(|_| p.environment.tls.acme()) {
        items.push(Item {
            component: "acme".into(),
            extension: ".json",
            source: Source::Acme {
                service: edge.name.clone(),
                path: sprocket_desired::traefik::ACME_STORAGE.into(),
            },
        });
    }
    items
}
