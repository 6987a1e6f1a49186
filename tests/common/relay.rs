//! A TCP relay to Postgres for tests that need the database at another address or behind a link
//! they can cut.

use std::net::{IpAddr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A TCP relay that can be cut like a partitioned network: bytes in flight are held, nothing is
/// reset or refused, until the link heals and delivers them.
pub struct Link {
    /// Where the relay listens.
    pub addr: SocketAddr,
    cut: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

impl Link {
    /// A relay to `upstream` on a free port of 127.0.0.1.
    pub async fn start(upstream: SocketAddr) -> Self {
        Self::start_on(IpAddr::from([127, 0, 0, 1]), upstream).await
    }

    /// A relay to `upstream` on a free port of `ip` (an address of this network namespace).
    pub async fn start_on(ip: IpAddr, upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind((ip, 0)).await.expect("bind the relay");
        let addr = listener.local_addr().expect("relay address");
        let (cut, state) = watch::channel(false);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let ((client_read, client_write), (server_read, server_write)) =
                        (client.into_split(), server.into_split());
                    tokio::join!(
                        relay(client_read, server_write, state.clone()),
                        relay(server_read, client_write, state)
                    );
                });
            }
        });
        Self { addr, cut, accept }
    }

    /// Holds every byte from now on.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Delivers what was held, and what comes.
    pub fn heal(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn relay(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut cut: watch::Receiver<bool>) {
    let mut buffer = vec![0; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if cut.wait_for(|cut| !*cut).await.is_err() || to.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// `url` with its host and port replaced by `addr`.
pub fn with_host(url: &str, addr: SocketAddr) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..].find(['/', '?']).map_or(url.len(), |i| start + i);
    let userinfo = url[start..end].rfind('@').map_or("", |at| &url[start..=start + at]);
    format!("{}{userinfo}{addr}{}", &url[..start], &url[end..])
}

/// The TCP address of the Postgres server `url` names.
///
/// # Panics
/// The URL names a Unix socket, or its host does not resolve.
pub async fn postgres_address(url: &str) -> SocketAddr {
    use std::str::FromStr;
    let options = sqlx::postgres::PgConnectOptions::from_str(url).expect("a valid postgres url");
    assert!(options.get_socket().is_none(), "{url} must name a TCP host, not a Unix socket");
    let found = tokio::net::lookup_host((options.get_host(), options.get_port()))
        .await
        .expect("resolve the postgres host")
        .next()
        .expect("an address for the postgres host");
    found
}
