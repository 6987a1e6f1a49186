//! `anapars-peer-rust --port P [--host 127.0.0.1] [--ping-interval-ms 25000]`: serves until SIGTERM
//! or Ctrl-C. `--port 0` picks a free port; the first line printed names the address.

use anapars_peer_rust::{serve, Config};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: anapars-peer-rust --port P [--host 127.0.0.1] [--ping-interval-ms 25000]";

fn parse(args: &[String]) -> Result<(SocketAddr, Config), String> {
    let mut addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8090);
    let mut config = Config::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--port" => addr.set_port(value.parse().map_err(|_| format!("--port {value}: not a port"))?),
            "--host" => addr.set_ip(value.parse().map_err(|_| format!("--host {value}: not an ip address"))?),
            "--ping-interval-ms" => {
                let ms: u64 = value.parse().map_err(|_| format!("--ping-interval-ms {value}: not a number"))?;
                config.ping_interval = Duration::from_millis(ms.max(1));
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok((addr, config))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (addr, config) = match parse(&args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("anapars-peer-rust: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("anapars-peer-rust: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = listener.local_addr().unwrap_or(addr);
    println!("anapars-peer-rust listening on http://{local}");
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("anapars-peer-rust: cannot watch SIGTERM: {e}");
            return ExitCode::FAILURE;
        }
    };
    tokio::select! {
        () = serve(listener, config) => {}
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    ExitCode::SUCCESS
}
