//! F11: an ambient `HTTP_PROXY`/`ALL_PROXY` never sees a request to Vault (the unseal keys and
//! tokens in it would go to the proxy in clear). Its own test binary: it sets the process's
//! environment before any thread starts.

use sprocket_vault::VaultClient;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A one-route HTTP server on 127.0.0.1 counting its connections; answers `body` to anything.
fn server(body: &'static str) -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            count.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, seen)
}

#[test]
fn vault_requests_ignore_the_ambient_proxy() {
    let (proxy_port, proxy_seen) = server("{}");
    let (vault_port, vault_seen) = server(
        r#"{"type":"shamir","initialized":true,"sealed":true,"t":3,"n":5,"progress":0,"version":"2.7.2"}"#,
    );
    let proxy = format!("http://127.0.0.1:{proxy_port}");
    // SAFETY: set before the runtime or any other thread of this test binary reads the env.
    unsafe {
        for k in [
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "all_proxy",
        ] {
            std::env::set_var(k, &proxy);
        }
        std::env::remove_var("NO_PROXY");
        std::env::remove_var("no_proxy");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let c = VaultClient::new(&format!("http://127.0.0.1:{vault_port}"));
    let status = rt
        .block_on(c.seal_status())
        .expect("Vault answered directly");
    assert!(status.sealed);
    assert_eq!(vault_seen.load(Ordering::SeqCst), 1);
    assert_eq!(
        proxy_seen.load(Ordering::SeqCst),
        0,
        "the proxy saw a request"
    );
}
