//! The queue record that carries events from ingest to the processor.
//!
//! Format: one version byte (`1`) followed by the postcard encoding of `Vec<Event>`. One
//! record holds all the events of one accepted request, so a batch is durable or not as a
//! whole.

use crate::Event;

const VERSION: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum BatchCodecError {
    #[error("unknown event record version {0}")]
    Version(u8),
    #[error("empty event record")]
    Empty,
    #[error("event record does not decode")]
    Decode(#[source] postcard::Error),
    #[error("event record does not encode")]
    Encode(#[source] postcard::Error),
}

/// Encodes the events of one request into one queue record.
pub fn encode_batch(events: &[Event]) -> Result<Vec<u8>, BatchCodecError> {
    let mut out = vec![VERSION];
    postcard::to_io(events, &mut out).map_err(BatchCodecError::Encode)?;
    Ok(out)
}

/// Decodes a queue record written by [`encode_batch`].
pub fn decode_batch(record: &[u8]) -> Result<Vec<Event>, BatchCodecError> {
    match record.split_first() {
        None => Err(BatchCodecError::Empty),
        Some((&VERSION, body)) => postcard::from_bytes(body).map_err(BatchCodecError::Decode),
        Some((&other, _)) => Err(BatchCodecError::Version(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Revenue, SiteId};

    fn event(name: &str) -> Event {
        Event {
            event_id_from_client: true,
            visitor_id: 42,
            user_id: Some("u".into()),
            pathname: "/".into(),
            props: [("plan".to_string(), "pro".to_string())].into(),
            revenue: Some(Revenue {
                amount_micros: 19_990_000,
                currency: "EUR".into(),
            }),
            ..Event::new("e1", SiteId::from("example.com"), name, 1_700_000_000_123)
        }
    }

    #[test]
    fn round_trips() {
        let events = vec![event("pageview"), event("Signup")];
        let record = encode_batch(&events).unwrap();
        assert_eq!(decode_batch(&record).unwrap(), events);
    }

    #[test]
    fn rejects_unknown_version_and_garbage() {
        assert!(matches!(
            decode_batch(&[9, 1, 2]),
            Err(BatchCodecError::Version(9))
        ));
        assert!(matches!(decode_batch(&[]), Err(BatchCodecError::Empty)));
        assert!(matches!(
            decode_batch(&[1, 0xff, 0xff, 0xff]),
            Err(BatchCodecError::Decode(_))
        ));
    }
}
