//! Who sent a request: the client IP (from the socket, or from forwarding headers only when
//! the socket peer is a trusted proxy, since anyone can forge them) and the user agent.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use heartbeat_ingest::ClientInfo;
use ipnet::IpNet;

/// Forwarding headers, in the order they are believed.
const FORWARDED_HEADERS: [&str; 3] = ["cf-connecting-ip", "x-real-ip", "x-forwarded-for"];

pub fn client_info(peer: SocketAddr, headers: &HeaderMap, trusted_proxies: &[IpNet]) -> ClientInfo {
    let peer_ip = peer.ip();
    let forwarded = trusted_proxies
        .iter()
        .any(|net| net.contains(&peer_ip))
        .then(|| {
            FORWARDED_HEADERS.iter().find_map(|name| {
                let value = headers.get(*name)?.to_str().ok()?;
                // X-Forwarded-For lists the client first, then each proxy.
                value.split(',').next()?.trim().parse::<IpAddr>().ok()
            })
        })
        .flatten();
    ClientInfo {
        ip: Some(forwarded.unwrap_or(peer_ip)),
        user_agent: headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(1000).collect()),
        do_not_track: ["dnt", "sec-gpc"]
            .iter()
            .any(|name| headers.get(*name).is_some_and(|v| v.as_bytes() == b"1")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.7, 10.0.0.1".parse().unwrap());
        headers.insert("user-agent", "Mozilla/5.0".parse().unwrap());
        headers
    }

    #[test]
    fn forwarded_address_only_from_trusted_proxies() {
        let proxy: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let trusted: Vec<IpNet> = vec!["127.0.0.0/8".parse().unwrap()];
        let info = client_info(proxy, &headers(), &trusted);
        assert_eq!(info.ip, "203.0.113.7".parse().ok());
        assert_eq!(info.user_agent.as_deref(), Some("Mozilla/5.0"));
        assert!(!info.do_not_track);
        let mut gpc = headers();
        gpc.insert("sec-gpc", "1".parse().unwrap());
        assert!(client_info(proxy, &gpc, &trusted).do_not_track);
        let untrusted = client_info(proxy, &headers(), &[]);
        assert_eq!(untrusted.ip, "127.0.0.1".parse().ok());
        let elsewhere: SocketAddr = "198.51.100.1:5000".parse().unwrap();
        assert_eq!(
            client_info(elsewhere, &headers(), &trusted).ip,
            "198.51.100.1".parse().ok()
        );
    }
}
