//! What `up` provisions in the datastores, from the real example spec: the demo's own RabbitMQ
//! login, the job its task receives (no value in it), its network and its place in the graph.

mod common;

use common::example;
use sprocket_desired::graph::{graph, NeedKind, Step};
use sprocket_desired::provision::{DatastoreKind, Job};
use sprocket_desired::state::desired;

#[test]
fn the_demo_gets_its_own_rabbitmq_login_on_its_own_vhost() {
    let p = example("offline");
    let d = desired(&p);
    assert_eq!(
        d.provisions
            .iter()
            .map(|p| p.datastore.as_str())
            .collect::<Vec<_>>(),
        ["redis", "rabbitmq", "postgres", "s3"],
        "the datastores of the swarm in spec order, then the externals"
    );
    let pr = d
        .provisions
        .iter()
        .find(|p| p.datastore == "rabbitmq")
        .unwrap();
    assert_eq!(
        (pr.datastore.as_str(), pr.service.as_str(), pr.kind),
        ("rabbitmq", "sprocket_rabbitmq", DatastoreKind::Rabbitmq)
    );
    assert_eq!(pr.network, "sprocket_provision_rabbitmq");
    assert_eq!(pr.logins.len(), 1);
    let l = &pr.logins[0];
    assert_eq!(
        (
            l.service.as_str(),
            l.user.as_str(),
            l.vhost.as_str(),
            l.secret.as_str()
        ),
        ("demo", "demo", "demo", "demo-rabbitmq-password")
    );
    assert_eq!(
        pr.secrets(),
        ["rabbitmq-admin-password", "demo-rabbitmq-password"]
    );
    // The job names files, never values; it round-trips through JSON (the task's env).
    let job = pr.job("sprocket", false);
    assert_eq!(
        job.admin_password_file,
        "/run/secrets/rabbitmq-admin-password"
    );
    assert_eq!(
        job.logins[0].password_file,
        "/run/secrets/demo-rabbitmq-password"
    );
    assert_eq!((job.host.as_str(), job.port), ("rabbitmq", 15672));
    assert_eq!(job.owner, "sprocketctl-sprocket");
    let text = serde_json::to_string(&job).unwrap();
    assert_eq!(serde_json::from_str::<Job>(&text).unwrap(), job);
    // RabbitMQ's job carries no PostgreSQL field: its marker (the job's hash) is the one
    // earlier versions made, so an upgrade provisions nothing again.
    for field in ["admin_database", "sslmode", "database", "privileges"] {
        assert!(!text.contains(field), "{field} in {text}");
    }
}

#[test]
fn n8n_and_the_demo_get_their_own_postgres_roles_and_databases_on_the_external_server() {
    use sprocket_spec::model::{Privileges, SslMode};
    let p = example("offline");
    let d = desired(&p);
    let pr = d
        .provisions
        .iter()
        .find(|p| p.datastore == "postgres")
        .expect("the external with an administrator is provisioned");
    assert!(!pr.in_swarm);
    assert_eq!(pr.kind, DatastoreKind::Postgres);
    // Reached as its consumers reach it: the offline environment's host on the Docker host,
    // with the host entry the engine resolves; from a network the task joins alone.
    assert_eq!(
        (pr.host.as_str(), pr.admin_port),
        ("host.docker.internal", 5433)
    );
    assert_eq!(pr.hosts, ["host-gateway host.docker.internal"]);
    assert_eq!(pr.network, "sprocket_provision_postgres");
    assert!(d.services().all(|s| !s
        .networks
        .iter()
        .any(|n| n.network == "sprocket_provision_postgres")));
    assert_eq!(pr.layer, "data", "its first consumer's (n8n's) layer");
    // Namespaced names: environments may share one managed server.
    let users: Vec<&str> = pr.logins.iter().map(|l| l.user.as_str()).collect();
    assert_eq!(users, ["sprocket_n8n", "sprocket_demo"]);
    let l = &pr.logins[1];
    assert_eq!(
        (
            l.user.as_str(),
            l.database.as_str(),
            l.privileges,
            l.secret.as_str()
        ),
        (
            "sprocket_demo",
            "sprocket_demo",
            Privileges::Owner,
            "demo-postgres-password"
        )
    );
    let job = pr.job("sprocket", false);
    assert_eq!(
        (
            job.admin_user.as_str(),
            job.admin_database.as_str(),
            job.sslmode
        ),
        ("doadmin", "defaultdb", Some(SslMode::Require))
    );
    assert_eq!(job.admin_password_file, "/run/secrets/db-password");
    // The administrator's password is a Docker secret of the layer (no service mounts it).
    let data = d.layers.iter().find(|l| l.name == "data").unwrap();
    assert!(data.secrets.iter().any(|s| s.name == "db-password"));
    // The consumer reaches the host too, and learns its names through `{namespace}`.
    let demo = d.services().find(|s| s.short_name == "demo").unwrap();
    assert_eq!(demo.hosts, ["host-gateway host.docker.internal"]);
    // Its user through `{access.postgres.user}`: one of its two logins, by the version of the
    // password the task mounts (odd: its own, even: the second), chosen when it is deployed.
    assert_eq!(demo.env["DEMO_PG_USER"], "{access.postgres.user}");
    let version = |v: u64| move |secret: &str| (secret == "demo-postgres-password").then_some(v);
    assert_eq!(demo.env_at(version(1))["DEMO_PG_USER"], "sprocket_demo");
    assert_eq!(demo.env_at(version(2))["DEMO_PG_USER"], "sprocket_demo_b");
    assert_eq!(demo.env_at(version(3))["DEMO_PG_USER"], "sprocket_demo");
    assert_eq!(demo.env_at(|_| None)["DEMO_PG_USER"], "sprocket_demo");
    // RabbitMQ's by its own password's version.
    assert_eq!(
        demo.env_at(|s| (s == "demo-rabbitmq-password").then_some(2))["DEMO_AMQP_USER"],
        "demo_b"
    );
    // A live task on either login agrees with the spec; another user does not.
    let mut live = demo.clone();
    live.env = demo.env_at(version(2));
    assert!(sprocket_desired::plan::diff_service(demo, &live).is_empty());
    live.env
        .insert("DEMO_PG_USER".into(), "sprocket_other".into());
    assert_eq!(
        sprocket_desired::plan::diff_service(demo, &live)
            .iter()
            .map(|f| f.path.as_str())
            .collect::<Vec<_>>(),
        ["env.DEMO_PG_USER"]
    );
    // The job chooses the same login from the same version.
    let pg = d
        .provisions
        .iter()
        .find(|p| p.datastore == "postgres")
        .unwrap();
    let job = pg
        .job("sprocket", false)
        .choose_logins(|file| (file == "/run/secrets/demo-postgres-password").then_some(2));
    let l = job.logins.iter().find(|l| l.service == "demo").unwrap();
    assert_eq!(
        (l.current(), l.other().as_str()),
        ("sprocket_demo_b", "sprocket_demo")
    );
    assert_eq!(
        pg.describe(pg.logins.iter().find(|l| l.service == "demo").unwrap()),
        "sprocket_demo@sprocket_demo (owner, alternating with sprocket_demo_b)"
    );
    let n8n = d.services().find(|s| s.short_name == "n8n").unwrap();
    assert_eq!(n8n.env["DB_POSTGRESDB_HOST"], "host.docker.internal");
    assert_eq!(n8n.env["DB_POSTGRESDB_PORT"], "5433");
    assert_eq!(
        n8n.env_at(|_| Some(1))["DB_POSTGRESDB_USER"],
        "sprocket_n8n"
    );
    // Production: DigitalOcean's server, no host entry, n8n's login alone (no demo there).
    let prod = example("prod");
    let d = desired(&prod);
    let pr = d
        .provisions
        .iter()
        .find(|p| p.datastore == "postgres")
        .unwrap();
    assert_eq!(
        (pr.host.as_str(), pr.admin_port, pr.hosts.is_empty()),
        ("sprocket-db.db.ondigitalocean.com", 25060, true)
    );
    let users: Vec<&str> = pr.logins.iter().map(|l| l.user.as_str()).collect();
    assert_eq!(users, ["sprocket_n8n"]);
    let n8n = d.services().find(|s| s.short_name == "n8n").unwrap();
    assert_eq!(
        n8n.env["DB_POSTGRESDB_HOST"],
        "sprocket-db.db.ondigitalocean.com"
    );
}

#[test]
fn the_datastore_joins_its_provisioning_network_and_the_consumer_mounts_its_password() {
    let p = example("offline");
    let d = desired(&p);
    let mq = d.services().find(|s| s.short_name == "rabbitmq").unwrap();
    assert!(mq
        .networks
        .iter()
        .any(|n| n.network == "sprocket_provision_rabbitmq" && n.aliases == ["rabbitmq"]));
    // Nothing else joins it: a datastore joins its own, nothing else joins any.
    for s in d.services() {
        let own = format!("sprocket_provision_{}", s.short_name);
        assert!(
            !s.networks
                .iter()
                .any(|n| n.network.contains("_provision_") && n.network != own),
            "{}",
            s.name
        );
    }
    let demo = d.services().find(|s| s.short_name == "demo").unwrap();
    let m = demo
        .secrets
        .iter()
        .find(|m| m.name == "demo-rabbitmq-password")
        .unwrap();
    assert_eq!(m.target, "/run/secrets/rabbitmq-password");
    // Kept in Vault like every generated secret, so made at the Vault step.
    assert!(d.is_vault_made("demo-rabbitmq-password"));
}

#[test]
fn provisioning_starts_with_its_datastore_after_vault_and_the_consumer_waits_for_it() {
    let p = example("offline");
    let d = desired(&p);
    let g = graph(&p, &d, true);
    let step = Step::Provision("sprocket_rabbitmq".into());
    let needs: Vec<(String, NeedKind)> = g
        .needs_of(&step)
        .iter()
        .map(|n| (n.on.to_string(), n.kind))
        .collect();
    assert_eq!(
        needs,
        [
            ("sprocket_rabbitmq".to_string(), NeedKind::Started),
            ("vault (init/unseal/configure)".to_string(), NeedKind::Vault),
        ]
    );
    assert!(g
        .dependents(&step)
        .contains(&Step::Service("sprocket_demo".into())));
    // Without a Vault step (Vault disabled), the passwords exist before the deploy: only the
    // datastore is waited for.
    let g = graph(&p, &d, false);
    assert_eq!(g.needs_of(&step).len(), 1);
}

#[test]
fn the_marker_changes_with_the_logins_and_the_secret_versions_only() {
    let p = example("offline");
    let d = desired(&p);
    let pr = d
        .provisions
        .iter()
        .find(|p| p.datastore == "rabbitmq")
        .unwrap();
    let v1 = vec![
        "sprocket_rabbitmq-admin-password-v1".to_string(),
        "sprocket_demo-rabbitmq-password-v1".to_string(),
    ];
    let v2 = vec![
        "sprocket_rabbitmq-admin-password-v1".to_string(),
        "sprocket_demo-rabbitmq-password-v2".to_string(),
    ];
    let m1 = pr.marker("sprocket", &v1);
    assert!(m1.starts_with("sprocket_provisioned-rabbitmq-"), "{m1}");
    assert_eq!(m1, pr.marker("sprocket", &v1));
    assert_ne!(m1, pr.marker("sprocket", &v2));
    let mut other = pr.clone();
    other.logins[0].vhost = "shared".into();
    assert_ne!(m1, other.marker("sprocket", &v1));
}

#[test]
fn a_provisioning_runs_only_when_its_marker_is_missing_or_prune_has_work() {
    use sprocket_desired::provision::Decision;
    let p = example("offline");
    let d = desired(&p);
    let pr = &d.provisions[0];
    let v1 = vec![
        "sprocket_rabbitmq-admin-password-v1".to_string(),
        "sprocket_demo-rabbitmq-password-v1".to_string(),
    ];
    let m1 = pr.marker("sprocket", &v1);
    let older = "sprocket_provisioned-rabbitmq-000000000000";
    let run = |why| Decision::Run { why };
    assert_eq!(
        pr.decide("sprocket", &[], None, false),
        run("passwords to be made first")
    );
    assert_eq!(
        pr.decide("sprocket", &[], Some(&v1), false),
        run("never provisioned")
    );
    assert_eq!(
        pr.decide("sprocket", &[older], Some(&v1), false),
        run("logins or passwords changed")
    );
    // Its marker: nothing to do, also when an earlier marker is left, unless pruning.
    assert_eq!(
        pr.decide("sprocket", &[&m1], Some(&v1), false),
        Decision::Skip
    );
    assert_eq!(
        pr.decide("sprocket", &[&m1], Some(&v1), true),
        Decision::Skip
    );
    assert_eq!(
        pr.decide("sprocket", &[older, &m1], Some(&v1), false),
        Decision::Skip
    );
    assert_eq!(
        pr.decide("sprocket", &[older, &m1], Some(&v1), true),
        run("what an earlier provisioning made may be left: removed with --prune")
    );
}

#[test]
fn an_external_nobody_logs_in_to_runs_only_to_prune_what_earlier_ones_made() {
    let p = example("offline");
    let d = desired(&p);
    let mut pr = d
        .provisions
        .iter()
        .find(|p| p.datastore == "postgres")
        .unwrap()
        .clone();
    let earlier = pr.marker("sprocket", &["sprocket_db-password-1".into()]);
    pr.logins.clear();
    assert!(pr.idle());
    let v = vec!["sprocket_db-password-1".to_string()];
    let now = pr.marker("sprocket", &v);
    use sprocket_desired::provision::Decision;
    // Without --prune, or never provisioned, or without the administrator's password: nothing.
    assert_eq!(
        pr.decide("sprocket", &[earlier.as_str()], Some(&v), false),
        Decision::Skip
    );
    assert_eq!(pr.decide("sprocket", &[], Some(&v), true), Decision::Skip);
    assert_eq!(
        pr.decide("sprocket", &[earlier.as_str()], None, true),
        Decision::Skip
    );
    // With --prune after its last consumer went: it runs, once.
    assert!(matches!(
        pr.decide("sprocket", &[earlier.as_str()], Some(&v), true),
        Decision::Run { .. }
    ));
    assert_eq!(
        pr.decide("sprocket", &[now.as_str()], Some(&v), true),
        Decision::Skip
    );
}

#[test]
fn the_demo_gets_its_own_s3_user_and_key_limited_to_its_buckets_offline() {
    use sprocket_spec::model::{BucketAccess, S3Keys};
    let p = example("offline");
    let d = desired(&p);
    let pr = d.provisions.iter().find(|p| p.datastore == "s3").unwrap();
    assert_eq!(
        (pr.kind, pr.in_swarm, pr.keys),
        (DatastoreKind::S3, false, S3Keys::PerService)
    );
    // Reached at the endpoint the offline environment gives, on the Docker host.
    assert_eq!(pr.host, "host.docker.internal");
    assert_eq!(pr.hosts, ["host-gateway host.docker.internal"]);
    assert_eq!(
        pr.secrets(),
        [
            "s3-access-key",
            "s3-secret-key",
            "demo-s3-secret-key",
            "demo-s3-access-key"
        ]
    );
    let l = &pr.logins[0];
    assert_eq!(
        (l.service.as_str(), l.user.as_str()),
        ("demo", "sprocket-demo")
    );
    assert_eq!(
        l.buckets,
        [
            ("sprocket-main".to_string(), BucketAccess::Readwrite),
            ("sprocket-replays-main".to_string(), BucketAccess::Read)
        ]
    );
    assert_eq!(
        pr.describe(l),
        "sprocket-demo (sprocket-main readwrite, sprocket-replays-main read)"
    );
    // The job: files and names, no value; every bucket of the store, not only the demo's.
    let job = pr.job("sprocket", false);
    assert_eq!(
        (job.endpoint.as_str(), job.region.as_str()),
        ("http://host.docker.internal:9333", "us-east-1")
    );
    assert_eq!(job.admin_key_file, "/run/secrets/s3-access-key");
    assert_eq!(job.admin_password_file, "/run/secrets/s3-secret-key");
    assert_eq!(
        job.buckets,
        [
            "sprocket-main",
            "sprocket-image-gen-main",
            "sprocket-replays-main"
        ]
    );
    assert_eq!(job.logins[0].key_file, "/run/secrets/demo-s3-access-key");
    assert_eq!(
        job.logins[0].password_file,
        "/run/secrets/demo-s3-secret-key"
    );
    let text = serde_json::to_string(&job).unwrap();
    assert_eq!(serde_json::from_str::<Job>(&text).unwrap(), job);
    for field in [
        "admin_database",
        "sslmode",
        "vhost",
        "privileges",
        "retire",
        "fresh",
    ] {
        assert!(!text.contains(field), "{field} in {text}");
    }
    // A consumer with no service yet: its login keeps no earlier credential for a roll.
    let fresh = job.clone().mark_fresh(|consumer| consumer != "demo");
    assert!(fresh
        .logins
        .iter()
        .all(|l| l.fresh == (l.service == "demo")));
    assert!(fresh.logins.iter().any(|l| l.fresh), "{:?}", fresh.logins);
    let text = serde_json::to_string(&fresh).unwrap();
    assert_eq!(serde_json::from_str::<Job>(&text).unwrap(), fresh);
    assert_eq!(
        job.clone().mark_fresh(|_| true),
        job,
        "all running: as before"
    );
    // The retirement after a roll: the same logins and files, no bucket to make, no prune —
    // and the provisioning's marker does not depend on it (no churn for existing markers).
    let retire = pr.retire_job("sprocket");
    assert!(retire.retire && !retire.prune && retire.buckets.is_empty());
    assert_eq!(retire.logins, job.logins);
    let text = serde_json::to_string(&retire).unwrap();
    assert_eq!(serde_json::from_str::<Job>(&text).unwrap(), retire);
    assert_eq!(
        pr.marker("sprocket", &[]),
        format!(
            "sprocket_provisioned-{}-{}",
            pr.datastore,
            sprocket_desired::state::short_hash(
                &serde_json::to_vec(&(&job, &[] as &[String])).unwrap()
            )
        )
    );
    // The demo starts once its key is made.
    let g = graph(&p, &d, true);
    assert!(g
        .dependents(&Step::Provision(pr.service.clone()))
        .contains(&Step::Service("sprocket_demo".into())));
}

#[test]
fn with_shared_keys_only_the_buckets_are_made_and_consumers_mount_the_stores_key() {
    let p = example("prod");
    let d = desired(&p);
    let pr = d.provisions.iter().find(|p| p.datastore == "s3").unwrap();
    // Nobody in prod declares S3 access (the demo does not run there), but the Sprocket apps
    // use the store: its buckets are made, the provisioning is not idle.
    assert!(!pr.per_consumer() && !pr.idle());
    // Where nothing running uses the store, it is.
    let mut quiet = pr.clone();
    quiet.used = false;
    assert!(quiet.idle());
    assert_eq!(pr.secrets(), ["s3-access-key", "s3-secret-key"]);
    let job = pr.job("sprocket", false);
    assert!(job.logins.is_empty());
    assert_eq!(job.region, "nyc3");
    assert_eq!(job.endpoint, "https://nyc3.digitaloceanspaces.com");
    // A consumer of shared keys is shown as such.
    let mut shared = example("offline");
    for x in shared.externals.iter_mut().filter(|x| x.name == "s3") {
        x.datastore.as_mut().unwrap().keys = sprocket_spec::model::S3Keys::Shared;
    }
    let d = desired(&shared);
    let pr = d.provisions.iter().find(|p| p.datastore == "s3").unwrap();
    assert_eq!(
        pr.describe(&pr.logins[0]),
        "shared key (sprocket-main readwrite, sprocket-replays-main read)"
    );
    assert!(pr.job("sprocket", false).logins.is_empty());
}

#[test]
fn the_backup_stores_key_is_made_where_no_service_uses_the_store() {
    let mut p = example("offline");
    // The demo is the only S3 consumer offline.
    for l in p.layers.iter_mut() {
        l.services.retain(|s| s.name != "demo");
    }
    let secrets = |p: &sprocket_spec::model::Platform| -> Vec<String> {
        desired(p)
            .layers
            .iter()
            .flat_map(|l| &l.secrets)
            .map(|s| s.name.clone())
            .collect()
    };
    let d = desired(&p);
    let pr = d.provisions.iter().find(|p| p.datastore == "s3").unwrap();
    assert!(pr.idle(), "nobody here uses the store");
    let with_backups = secrets(&p);
    for n in ["s3-access-key", "s3-secret-key"] {
        assert!(with_backups.iter().any(|s| s == n), "{n}: {with_backups:?}");
    }
    // Without backups to it, an idle store's key is not made.
    p.environment.backup = None;
    let without = secrets(&p);
    assert!(!without.iter().any(|s| s == "s3-access-key"), "{without:?}");
}

#[test]
fn the_agent_watches_the_scheduled_backups_on_a_network_of_its_own() {
    use sprocket_desired::checks::{monitor, watches_backups};
    let mut p = example("offline");
    // offline takes backups on demand only (`at: off`): no runner to watch.
    assert!(!watches_backups(&p));
    assert_eq!(monitor(&p).unwrap().backups, None);
    let joins = |p: &sprocket_spec::model::Platform| -> Vec<String> {
        desired(p)
            .services()
            .find(|s| s.name == "sprocket_vault-agent")
            .unwrap()
            .networks
            .iter()
            .map(|n| n.network.clone())
            .collect()
    };
    assert!(!joins(&p).contains(&"sprocket_backup_vault-agent".to_string()));
    p.environment.backup.as_mut().unwrap().scheduled = true;
    assert!(watches_backups(&p));
    assert_eq!(
        monitor(&p).unwrap().backups.as_deref(),
        Some("http://sprocket_backup-schedule:8091/")
    );
    assert!(
        joins(&p).contains(&"sprocket_backup_vault-agent".to_string()),
        "{:?}",
        joins(&p)
    );
    // A drill's copy takes no scheduled backup: nothing to watch there.
    p.environment.scratch_of = Some("sprocket".into());
    assert!(!watches_backups(&p));
}

#[test]
fn a_docker_secrets_name_says_its_version() {
    use sprocket_desired::state::{secret_name_version, versioned_secret_name};
    assert_eq!(
        secret_name_version(&versioned_secret_name("ns_demo-pw", 7)),
        Some(7)
    );
    // One made beside a stale one (`-v<N>-r<fingerprint>`).
    assert_eq!(secret_name_version("ns_demo-pw-v12-r1a2b3c4"), Some(12));
    // An operator's own secret, of no version.
    assert_eq!(secret_name_version("db-password"), None);
    assert_eq!(secret_name_version("ns_my-value"), None);
    assert_eq!(secret_name_version("ns_x-v3-rnothex"), None);
}
