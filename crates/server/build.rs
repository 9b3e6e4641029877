//! Embeds the web build (`web/dist/`: the dashboard and `js/heartbeat.js`) into the binary.
//!
//! Writes `$OUT_DIR/web_assets.rs`, a table of `(path, bytes, etag)` with `include_bytes!`
//! of every file under `web/dist/`. When the web build has not run (a fresh clone, a plain
//! `cargo build` or `cargo clippy`), the table holds a placeholder page and tracker that say
//! to run it, so the Rust build never depends on npm. `scripts/serve` and `scripts/test` run
//! the web build first.
//!
//! Also writes `$OUT_DIR/bundled_geoip.rs`: the country database the web build's `npm ci`
//! brings (`@ip-location-db/geo-whois-asn-country-mmdb`, CC BY 4.0 by the NRO), embedded so a
//! new install shows countries without downloading anything; `None` without it.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

const PLACEHOLDER_PAGE: &str = "<!doctype html><meta charset=utf-8><title>Heartbeat</title>\
<p>The dashboard was not built into this binary. Run <code>npm ci &amp;&amp; npm run build</code> \
in <code>web/</code> (or <code>scripts/serve</code>), then build the server again.</p>\n";
const PLACEHOLDER_TRACKER: &str =
    "/* heartbeat.js was not built into this binary: run the web build (web/), then cargo build. */\n";

/// The country database in the web build's packages.
const COUNTRY_DB: &str =
    "node_modules/@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb";

fn files_under(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, found);
        } else {
            found.push(path);
        }
    }
}

fn etag(bytes: &[u8]) -> String {
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    format!("\"{:016x}\"", hasher.finish())
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let web = manifest.join("../../web");
    let dist = web.join("dist");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());

    let mut files = Vec::new();
    files_under(&dist, &mut files);
    files.sort();
    let mut entries: Vec<(String, PathBuf)> = files
        .iter()
        .map(|path| {
            let relative = path.strip_prefix(&dist).unwrap();
            let name = relative.to_string_lossy().replace('\\', "/");
            (name, path.clone())
        })
        .collect();
    for (name, text) in [
        ("index.html", PLACEHOLDER_PAGE),
        ("js/heartbeat.js", PLACEHOLDER_TRACKER),
    ] {
        if !entries.iter().any(|(n, _)| n == name) {
            let path = out.join(name.replace('/', "_"));
            std::fs::write(&path, text).unwrap();
            entries.push((name.to_owned(), path));
        }
    }

    let mut table = String::from("pub static ASSETS: &[(&str, &[u8], &str)] = &[\n");
    for (name, path) in &entries {
        let bytes = std::fs::read(path).unwrap();
        table.push_str(&format!(
            "    ({name:?}, include_bytes!({path:?}), {etag:?}),\n",
            path = path.display().to_string(),
            etag = etag(&bytes),
        ));
    }
    table.push_str("];\n");
    std::fs::write(out.join("web_assets.rs"), table).unwrap();

    let country_db = web.join(COUNTRY_DB);
    let bundled = if country_db.is_file() {
        format!(
            "pub const BUNDLED_COUNTRY_DB: Option<&[u8]> = Some(include_bytes!({:?}));\n",
            country_db.display().to_string()
        )
    } else {
        "pub const BUNDLED_COUNTRY_DB: Option<&[u8]> = None;\n".to_owned()
    };
    std::fs::write(out.join("bundled_geoip.rs"), bundled).unwrap();
    println!("cargo:rerun-if-changed={}", country_db.display());

    // A new web build re-embeds. Watching `web/dist` scans it whole; before the first web
    // build it does not exist, so watch `web/` itself (which then has no node_modules yet).
    if dist.is_dir() {
        println!("cargo:rerun-if-changed={}", dist.display());
    } else {
        println!("cargo:rerun-if-changed={}", web.display());
    }
    println!("cargo:rerun-if-changed=build.rs");
}
