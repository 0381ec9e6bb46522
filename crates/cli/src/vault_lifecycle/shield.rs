//! Signals held while the only copy of Vault's keys exists in this process's memory: from just
//! before `sys/init` until the keyring is on disk (fsynced). A Ctrl-C or a CI job's SIGTERM in
//! those seconds would otherwise leave an initialised Vault and no keys. A signal that arrives
//! is noted and acted on as soon as the keyring is safe: the process then ends as the signal
//! asked (exit 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP).

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};
use tokio::task::JoinHandle;

const HELD: [(i32, &str); 3] = [(2, "SIGINT"), (15, "SIGTERM"), (1, "SIGHUP")];

pub struct Shield {
    /// The first signal that arrived (0: none).
    received: Arc<AtomicI32>,
    watchers: Vec<JoinHandle<()>>,
}

impl Shield {
    /// From now on SIGINT, SIGTERM and SIGHUP are noted, not obeyed.
    pub fn hold() -> Shield {
        let received = Arc::new(AtomicI32::new(0));
        let watchers = HELD
            .iter()
            .filter_map(|&(num, name)| {
                let mut s = signal(SignalKind::from_raw(num)).ok()?;
                let received = received.clone();
                Some(tokio::spawn(async move {
                    while s.recv().await.is_some() {
                        let _ = received.compare_exchange(0, num, Ordering::SeqCst, Ordering::SeqCst);
                        eprintln!(
                            "vault: {name} received while Vault's keys exist only in memory: held until the keyring is saved"
                        );
                    }
                }))
            })
            .collect();
        Shield { received, watchers }
    }

    /// The keys are safe on disk: a signal that arrived meanwhile ends the process now, as it
    /// asked; later ones end it at once (the handlers stay installed for the process's life, so
    /// they take the default's place).
    pub fn release(self) {
        let got = self.received.load(Ordering::SeqCst);
        if got != 0 {
            eprintln!("vault: the keyring is saved; stopping as asked");
            std::process::exit(128 + got);
        }
    }
}

impl Drop for Shield {
    fn drop(&mut self) {
        for w in &self.watchers {
            w.abort();
        }
        // Signals keep ending the process, as before the shield.
        for &(num, _) in &HELD {
            if let Ok(mut s) = signal(SignalKind::from_raw(num)) {
                tokio::spawn(async move {
                    if s.recv().await.is_some() {
                        std::process::exit(128 + num);
                    }
                });
            }
        }
    }
}
