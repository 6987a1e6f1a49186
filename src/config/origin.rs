//! Web origins (RFC 6454), as `allowed_origins` lists them and browsers send them.

/// A web origin: scheme, host and port (the default port of the scheme when none is written),
/// lower case, as browsers send it (RFC 6454).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// The origin of a request made to `host` (a `Host` header: a name or address, and a port
    /// when it is not the scheme's default) over `scheme` (`http` or `https`).
    pub fn of_host(scheme: &str, host: &str) -> Option<Self> {
        let default_port = if scheme == "https" { 443 } else { 80 };
        let (host, port) = host_and_port(host.trim(), default_port)?;
        Some(Self { scheme: scheme.to_owned(), host, port })
    }

    /// Parses `scheme://host[:port]` (`http` or `https`; no path, query or user info; IPv6 hosts
    /// in brackets).
    ///
    /// # Errors
    /// A message saying what is wrong with the text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (scheme, rest) = text.split_once("://").ok_or_else(|| format!("`{text}` is not scheme://host"))?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return Err(format!("`{text}`: the scheme must be http or https")),
        };
        let (host, port) = host_and_port(rest, default_port)
            .ok_or_else(|| format!("`{text}` is not scheme://host[:port] (no path, no trailing slash)"))?;
        Ok(Self { scheme, host, port })
    }
}

/// `host[:port]` (a `Host` header, or an origin after its scheme), lower case; None when it holds
/// anything else (a path, user info, spaces, an empty host or a bad port).
fn host_and_port(text: &str, default_port: u16) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        inner.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{inner}]"), port)
    } else {
        let (host, port) = match text.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        };
        let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
        if host.is_empty() || !host.chars().all(valid) {
            return None;
        }
        (host.to_owned(), port)
    };
    let port = match port {
        None => default_port,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok()?,
        Some(_) => return None,
    };
    Some((host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(s: &str) -> Origin {
        Origin::parse(s).unwrap()
    }

    #[test]
    fn origins_compare_by_scheme_host_and_effective_port() {
        assert_eq!(o("https://Console.Example"), o("https://console.example:443"));
        assert_eq!(o("http://127.0.0.1:8080"), o("HTTP://127.0.0.1:8080"));
        assert_ne!(o("http://console.example"), o("https://console.example"));
        assert_ne!(o("http://console.example:8080"), o("http://console.example"));
        assert_eq!(o("http://[::1]:8080"), o("http://[::1]:8080"));
        assert_eq!(o("http://[::1]").port, 80);
    }

    #[test]
    fn anything_but_an_origin_is_refused() {
        for bad in [
            "null",
            "console.example",
            "ftp://console.example",
            "https://console.example/",
            "https://console.example/path",
            "https://user@console.example",
            "https://",
            "https://console.example:",
            "https://console.example:99999",
            "https://con sole.example",
            "https://[not-ipv6]:80",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn host_headers_with_and_without_ports() {
        assert_eq!(host_and_port("127.0.0.1:8080", 80), Some(("127.0.0.1".into(), 8080)));
        assert_eq!(host_and_port("Hub.Example", 443), Some(("hub.example".into(), 443)));
        assert_eq!(host_and_port("[::1]:9", 80), Some(("[::1]".into(), 9)));
        assert_eq!(host_and_port("hub.example/x", 80), None);
    }
}
