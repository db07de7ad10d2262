//! Where payglot may send merchant notifications (SSRF): a notify URL must lead to a public
//! address. Loopback, private, link-local, shared (CGNAT), unique-local and unspecified
//! addresses are refused, unless routes.yaml allows them for that merchant
//! (`allow_private_notify: true`, for merchants on the same network, and the demo's sandbox
//! inbox); the gateway's own listeners are refused for every merchant.
//!
//! Checked twice: when a URL is accepted (an IP literal or `localhost` is refused with a clear
//! 400; routes.yaml defaults at load), and when a notification is sent, on the address actually
//! connected to: the notification client resolves names itself and drops every address the
//! rule refuses, so a name that resolves to a private address (or is rebound to one after it
//! was accepted) is never connected to.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

/// Whether an address is on the public internet (not loopback, private, link-local, ...).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// The rule for one merchant's notify URLs.
#[derive(Debug, Clone, Copy)]
pub struct NotifyRule<'a> {
    /// routes.yaml `allow_private_notify` of the merchant.
    pub allow_private: bool,
    /// The gateway's own listeners (never a target).
    pub own: &'a [SocketAddr],
}

impl NotifyRule<'_> {
    /// Whether a connection to `addr` is allowed.
    pub fn allows(&self, addr: SocketAddr) -> bool {
        if self.is_own(addr) {
            return false;
        }
        self.allow_private || is_public(addr.ip())
    }

    fn is_own(&self, addr: SocketAddr) -> bool {
        self.own.iter().any(|l| {
            l.port() == addr.port() && (l.ip() == addr.ip() || (l.ip().is_unspecified() && !is_public(addr.ip())))
        })
    }

    /// Checks a URL as far as it can be without resolving it: its scheme, and an IP-literal or
    /// `localhost` host against the rule.
    pub fn check_url(&self, url: &str) -> Result<(), String> {
        let uri: hyper::Uri = url.parse().map_err(|_| "is not a valid URL".to_string())?;
        let default_port = match uri.scheme_str() {
            Some("http") => 80,
            Some("https") => 443,
            _ => return Err("must be an http:// or https:// URL".into()),
        };
        let host = uri.host().ok_or("has no host")?.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(default_port);
        let ip = if host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost") {
            Some(IpAddr::from([127, 0, 0, 1]))
        } else {
            host.parse::<IpAddr>().ok()
        };
        match ip {
            Some(ip) if self.is_own(SocketAddr::new(ip, port)) => {
                Err("points at payglot's own listener".into())
            }
            Some(ip) if !self.allows(SocketAddr::new(ip, port)) => Err(format!(
                "points at {ip}, a loopback, private or link-local address (routes.yaml allow_private_notify: true allows such addresses for a merchant)"
            )),
            _ => Ok(()),
        }
    }
}

/// The resolver of the notification client for merchants without `allow_private_notify`:
/// names resolve as usual, and only public addresses come back.
#[derive(Clone, Default)]
pub struct PublicOnly;

impl tower_service::Service<hyper_util::client::legacy::connect::dns::Name> for PublicOnly {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: hyper_util::client::legacy::connect::dns::Name) -> Self::Future {
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = all.iter().copied().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("{name} resolves to no public address (only loopback, private or link-local ones); notifications go to public addresses only"),
                ));
            }
            Ok(public.into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_classified() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "203.0.113.9", "2001:4860:4860::8888", "172.32.0.1"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn urls_are_checked_against_the_rule() {
        let own: Vec<SocketAddr> = vec!["127.0.0.1:9901".parse().unwrap(), "0.0.0.0:8080".parse().unwrap()];
        let strict = NotifyRule { allow_private: false, own: &own };
        let lenient = NotifyRule { allow_private: true, own: &own };
        assert!(strict.check_url("https://school.example.edu/notify").is_ok());
        for url in [
            "http://127.0.0.1:9000/n",
            "http://localhost/n",
            "http://[::1]:80/",
            "http://169.254.169.254/latest",
            "http://10.0.0.5/n",
        ] {
            assert!(strict.check_url(url).is_err(), "{url}");
            assert!(lenient.check_url(url).is_ok(), "{url}");
        }
        for own_url in ["http://127.0.0.1:9901/admin/reload", "http://localhost:9901/", "http://10.0.0.2:8080/v1"] {
            assert!(lenient.check_url(own_url).unwrap_err().contains("own listener"), "{own_url}");
        }
        assert!(strict.check_url("ftp://x/").is_err());
    }
}
