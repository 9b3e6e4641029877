//! A site's own exclusions: allowed hostnames, excluded paths, excluded client addresses.

use std::net::IpAddr;

use heartbeat_model::SiteRules;
use ipnet::IpNet;

use crate::{DropReason, FieldError};

/// Most entries a rule list may hold, and the longest entry.
const MAX_ENTRIES: usize = 200;
const MAX_ENTRY_CHARS: usize = 300;

/// Why the site's rules drop an event at `hostname` + `pathname` from `ip`, if they do.
pub fn check(
    rules: &SiteRules,
    hostname: &str,
    pathname: &str,
    ip: Option<IpAddr>,
) -> Option<DropReason> {
    if !rules.allowed_hostnames.is_empty()
        && !rules
            .allowed_hostnames
            .iter()
            .any(|allowed| host_matches(allowed, hostname))
    {
        return Some(DropReason::HostnameNotAllowed);
    }
    if rules
        .excluded_paths
        .iter()
        .any(|pattern| path_matches(pattern, pathname))
    {
        return Some(DropReason::ExcludedPath);
    }
    if let Some(ip) = ip {
        if rules
            .excluded_ips
            .iter()
            .filter_map(|range| parse_range(range))
            .any(|net| net.contains(&ip))
        {
            return Some(DropReason::ExcludedIp);
        }
    }
    None
}

/// The problems with `rules`, each naming its entry (`excluded_ips[2]`).
pub fn validate(rules: &SiteRules) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (field, entries) in [
        ("allowed_hostnames", &rules.allowed_hostnames),
        ("excluded_paths", &rules.excluded_paths),
        ("excluded_ips", &rules.excluded_ips),
    ] {
        if entries.len() > MAX_ENTRIES {
            errors.push(FieldError::new(
                field,
                format!("at most {MAX_ENTRIES} entries"),
            ));
        }
        for (index, entry) in entries.iter().enumerate() {
            let name = format!("{field}[{index}]");
            let problem = if entry.is_empty() || entry.chars().count() > MAX_ENTRY_CHARS {
                Some(format!("must have 1 to {MAX_ENTRY_CHARS} characters"))
            } else {
                match field {
                    "excluded_paths" if !entry.starts_with('/') => {
                        Some("must start with /".to_owned())
                    }
                    "excluded_ips" if parse_range(entry).is_none() => {
                        Some("must be an IP address or a CIDR range like 10.0.0.0/8".to_owned())
                    }
                    "allowed_hostnames" if entry.contains(['/', ' ', ':']) => {
                        Some("must be a hostname like example.com or *.example.com".to_owned())
                    }
                    _ => None,
                }
            };
            if let Some(message) = problem {
                errors.push(FieldError::new(&name, message));
            }
        }
    }
    errors
}

fn parse_range(text: &str) -> Option<IpNet> {
    let text = text.trim();
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}

/// `example.com` matches itself (and `www.example.com`, which ingest normalizes to it);
/// `*.example.com` matches its subdomains.
fn host_matches(allowed: &str, hostname: &str) -> bool {
    let allowed = allowed.trim().to_ascii_lowercase();
    match allowed.strip_prefix("*.") {
        Some(parent) => hostname
            .strip_suffix(parent)
            .is_some_and(|sub| sub.ends_with('.')),
        None => super::page::normalize_host(&allowed) == hostname,
    }
}

/// Glob match of a path: `*` is any run of characters but `/`, `**` any run at all. Dynamic
/// programming over (pattern token, path byte): linear memory, no backtracking blow-up.
fn path_matches(pattern: &str, path: &str) -> bool {
    enum Token {
        Byte(u8),
        Star,
        DoubleStar,
    }
    let bytes = pattern.as_bytes();
    let mut tokens = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'*' {
            if bytes.get(i + 1) == Some(&b'*') {
                tokens.push(Token::DoubleStar);
                i += 2;
            } else {
                tokens.push(Token::Star);
                i += 1;
            }
        } else {
            tokens.push(Token::Byte(bytes[i]));
            i += 1;
        }
    }
    let path = path.as_bytes();
    // matched[j]: the tokens so far match path[..j].
    let mut matched = vec![false; path.len() + 1];
    matched[0] = true;
    for token in &tokens {
        let mut next = vec![false; path.len() + 1];
        match token {
            Token::Byte(b) => {
                for j in 0..path.len() {
                    next[j + 1] = matched[j] && path[j] == *b;
                }
            }
            Token::Star | Token::DoubleStar => {
                let crosses = matches!(token, Token::DoubleStar);
                next[0] = matched[0];
                for j in 0..path.len() {
                    next[j + 1] = matched[j + 1] || (next[j] && (crosses || path[j] != b'/'));
                }
            }
        }
        matched = next;
    }
    matched[path.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let cases = [
            ("/admin", "/admin", true),
            ("/admin", "/admin/users", false),
            ("/admin/*", "/admin/users", true),
            ("/admin/*", "/admin/users/1", false),
            ("/admin/**", "/admin/users/1", true),
            ("/admin/**", "/administrator", false),
            ("/blog/*/edit", "/blog/hello/edit", true),
            ("/blog/*/edit", "/blog/a/b/edit", false),
            ("/**/preview", "/x/y/preview", true),
            ("*", "/anything", false),
            ("**", "/anything/at/all", true),
        ];
        for (pattern, path, expected) in cases {
            assert_eq!(path_matches(pattern, path), expected, "{pattern} ~ {path}");
        }
        // No exponential backtracking.
        let long = "/a".repeat(2000);
        assert!(!path_matches(&"*a".repeat(100), &long));
    }

    #[test]
    fn rules() {
        let rules = SiteRules {
            allowed_hostnames: vec!["example.com".into(), "*.example.org".into()],
            excluded_paths: vec!["/admin/**".into()],
            excluded_ips: vec!["10.0.0.0/8".into(), "2001:db8::1".into()],
            respect_do_not_track: false,
        };
        let ip = |s: &str| s.parse().ok();
        assert_eq!(check(&rules, "example.com", "/", ip("203.0.113.1")), None);
        assert_eq!(check(&rules, "docs.example.org", "/", None), None);
        assert_eq!(
            check(&rules, "example.org", "/", None),
            Some(DropReason::HostnameNotAllowed)
        );
        assert_eq!(
            check(&rules, "evil-example.com", "/", None),
            Some(DropReason::HostnameNotAllowed)
        );
        assert_eq!(
            check(&rules, "example.com", "/admin/x", None),
            Some(DropReason::ExcludedPath)
        );
        assert_eq!(
            check(&rules, "example.com", "/", ip("10.1.2.3")),
            Some(DropReason::ExcludedIp)
        );
        assert_eq!(
            check(&rules, "example.com", "/", ip("2001:db8::1")),
            Some(DropReason::ExcludedIp)
        );
        assert_eq!(
            check(&SiteRules::default(), "any.host", "/admin", None),
            None
        );
    }

    #[test]
    fn validation_names_the_entry() {
        let rules = SiteRules {
            allowed_hostnames: vec!["https://x.com/".into()],
            excluded_paths: vec!["admin".into()],
            excluded_ips: vec!["10.0.0.0/8".into(), "not-an-ip".into()],
            respect_do_not_track: true,
        };
        let fields: Vec<String> = validate(&rules).into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "allowed_hostnames[0]",
                "excluded_paths[0]",
                "excluded_ips[1]"
            ]
        );
        assert!(validate(&SiteRules::default()).is_empty());
    }
}
