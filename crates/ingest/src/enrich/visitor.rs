//! Visitor ids: a user id sent by the client identifies the visitor as is; otherwise a keyed
//! hash of the daily salt, the site, the IP address and the user agent (no cookie, no
//! stored IP).

use std::hash::Hasher;
use std::net::IpAddr;

use siphasher::sip::SipHasher13;

use super::salt::Salt;

fn hash_parts(key: &Salt, parts: &[&[u8]]) -> u64 {
    let mut hasher = SipHasher13::new_with_key(key);
    for part in parts {
        hasher.write(part);
        hasher.write_u8(0xff);
    }
    hasher.finish()
}

/// The id of a visitor known by a client-given user id on `site`.
pub fn from_user_id(site: &str, user_id: &str) -> u64 {
    hash_parts(&[0; 16], &[b"user", site.as_bytes(), user_id.as_bytes()])
}

/// The cookieless id of an anonymous visitor for the day of `salt`.
pub fn anonymous(salt: &Salt, site: &str, ip: Option<IpAddr>, user_agent: &str) -> u64 {
    let ip = ip.map(|ip| ip.to_string()).unwrap_or_default();
    hash_parts(
        salt,
        &[site.as_bytes(), ip.as_bytes(), user_agent.as_bytes()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_depend_on_every_part() {
        let ip: Option<IpAddr> = "203.0.113.9".parse().ok();
        let base = anonymous(&[1; 16], "a.com", ip, "UA");
        assert_eq!(base, anonymous(&[1; 16], "a.com", ip, "UA"));
        assert_ne!(base, anonymous(&[2; 16], "a.com", ip, "UA"));
        assert_ne!(base, anonymous(&[1; 16], "b.com", ip, "UA"));
        assert_ne!(
            base,
            anonymous(&[1; 16], "a.com", "203.0.113.10".parse().ok(), "UA")
        );
        assert_ne!(base, anonymous(&[1; 16], "a.com", ip, "UA2"));
        assert_eq!(from_user_id("a.com", "u1"), from_user_id("a.com", "u1"));
        assert_ne!(from_user_id("a.com", "u1"), from_user_id("b.com", "u1"));
    }
}
