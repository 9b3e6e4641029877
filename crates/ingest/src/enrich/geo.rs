//! Location from the client's IP address, in any MaxMind-format database (GeoLite2 or
//! DB-IP Lite, City or Country; or ip-location-db's country databases, whose records are
//! `{"country_code": "US"}`). The address is only looked up, never kept.

use std::net::IpAddr;
use std::path::Path;

use maxminddb::Reader;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    /// ISO 3166-1 alpha-2, like `GB`.
    pub country: String,
    /// ISO 3166-2, like `GB-ENG`, as Plausible reports regions.
    pub region: String,
    /// The city's English name.
    pub city: String,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot open the GeoIP database {path}: {source}")]
pub struct GeoIpError {
    path: String,
    source: maxminddb::MaxMindDbError,
}

/// The parts of a GeoIP2/GeoLite2 City or Country record Heartbeat keeps. Decoding only
/// these, borrowed from the database, skips the names in every language that the full
/// `geoip2::City` record builds into maps (a fifth of enrichment's time when it did).
#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    country: Option<IsoCode<'a>>,
    /// ip-location-db's country databases.
    #[serde(borrow)]
    country_code: Option<&'a str>,
    #[serde(borrow)]
    subdivisions: Option<Vec<IsoCode<'a>>>,
    #[serde(borrow)]
    city: Option<City<'a>>,
}

#[derive(Deserialize)]
struct IsoCode<'a> {
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct City<'a> {
    #[serde(borrow)]
    names: Option<EnglishName<'a>>,
}

#[derive(Deserialize)]
struct EnglishName<'a> {
    en: Option<&'a str>,
}

/// A database's bytes: read from a file, or built into the binary.
enum Bytes {
    Owned(Vec<u8>),
    Static(&'static [u8]),
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        match self {
            Bytes::Owned(bytes) => bytes,
            Bytes::Static(bytes) => bytes,
        }
    }
}

/// An open GeoIP database, held in memory.
pub struct GeoIp {
    reader: Reader<Bytes>,
}

impl GeoIp {
    pub fn open(path: &Path) -> Result<GeoIp, GeoIpError> {
        let error = |source| GeoIpError {
            path: path.display().to_string(),
            source,
        };
        let bytes = std::fs::read(path).map_err(|e| error(e.into()))?;
        Reader::from_source(Bytes::Owned(bytes))
            .map(|reader| GeoIp { reader })
            .map_err(error)
    }

    /// A database built into the binary (`name` says which, for errors).
    pub fn embedded(name: &str, bytes: &'static [u8]) -> Result<GeoIp, GeoIpError> {
        Reader::from_source(Bytes::Static(bytes))
            .map(|reader| GeoIp { reader })
            .map_err(|source| GeoIpError {
                path: name.to_owned(),
                source,
            })
    }

    /// The database's type, like `GeoIP2-City`.
    pub fn database_type(&self) -> &str {
        &self.reader.metadata.database_type
    }

    /// Where `ip` is; empty fields for addresses the database does not know.
    pub fn locate(&self, ip: IpAddr) -> Location {
        // A Country database's records decode as a record without city and regions.
        let Ok(Some(record)) = self.reader.lookup::<Record>(ip) else {
            return Location::default();
        };
        let country = record
            .country
            .and_then(|c| c.iso_code)
            .or(record.country_code)
            .unwrap_or_default()
            .to_owned();
        let region = record
            .subdivisions
            .as_ref()
            .and_then(|s| s.first())
            .and_then(|s| s.iso_code)
            .filter(|_| !country.is_empty())
            .map(|code| format!("{country}-{code}"))
            .unwrap_or_default();
        let city = record
            .city
            .and_then(|c| c.names)
            .and_then(|names| names.en)
            .unwrap_or_default()
            .to_owned();
        Location {
            country,
            region,
            city,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MaxMind's test databases, shipped in the repository (`data/geoip/`).
    fn database(name: &str) -> GeoIp {
        GeoIp::open(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../data/geoip")
                .join(name),
        )
        .unwrap()
    }

    #[test]
    fn city_database() {
        let geo = database("GeoIP2-City-Test.mmdb");
        assert_eq!(geo.database_type(), "GeoIP2-City");
        let cases = [
            ("81.2.69.142", "GB", "GB-ENG", "London"),
            ("216.160.83.56", "US", "US-WA", "Milton"),
            ("89.160.20.112", "SE", "SE-E", "Linköping"),
            ("2.125.160.216", "GB", "GB-ENG", "Boxford"),
        ];
        for (ip, country, region, city) in cases {
            let found = geo.locate(ip.parse().unwrap());
            assert_eq!(
                (
                    found.country.as_str(),
                    found.region.as_str(),
                    found.city.as_str()
                ),
                (country, region, city),
                "{ip}"
            );
        }
        assert_eq!(
            geo.locate("127.0.0.1".parse().unwrap()),
            Location::default()
        );
        assert_eq!(geo.locate("::1".parse().unwrap()), Location::default());
    }

    #[test]
    fn country_database() {
        let geo = database("GeoLite2-Country-Test.mmdb");
        let found = geo.locate("81.2.69.142".parse().unwrap());
        assert_eq!(found.country, "GB");
        assert_eq!((found.region.as_str(), found.city.as_str()), ("", ""));
    }

    #[test]
    fn not_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.mmdb");
        std::fs::write(&path, b"not a database").unwrap();
        assert!(GeoIp::open(&path).is_err());
        assert!(GeoIp::open(&dir.path().join("missing.mmdb")).is_err());
    }
}
