//! The crate's one error type, split by what the caller should do about it: an
//! [`Unavailable`](SharedError::Unavailable) Redis is expected now and then and has a fallback
//! (the process's own limiter, no shared cache); everything else is a bug or a
//! misconfiguration to log.

use std::time::Duration;

/// What went wrong talking to Redis.
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    /// Redis could not be reached, dropped the connection, is still loading or did not answer
    /// within the command timeout. Transient: the caller falls back to its process-local
    /// limiter and skips the shared cache, and tries Redis again on the next request.
    #[error("redis unavailable for {operation}")]
    Unavailable {
        operation: &'static str,
        #[source]
        cause: Unreachable,
    },
    /// Redis answered with an error this crate did not expect (a wrong type at a key, an ACL
    /// refusal, a script error): a bug or a misconfiguration, not worth retrying.
    #[error("redis rejected {operation}")]
    Rejected {
        operation: &'static str,
        #[source]
        source: redis::RedisError,
    },
    /// The URL or an argument cannot be used (a malformed URL, an empty site id).
    #[error("invalid redis setting or argument: {reason}")]
    Invalid {
        reason: String,
        #[source]
        source: Option<redis::RedisError>,
    },
}

/// Why Redis is [unavailable](SharedError::Unavailable).
#[derive(Debug, thiserror::Error)]
pub enum Unreachable {
    /// No answer within the limit (connect or command timeout).
    #[error("no answer within {} ms", limit.as_millis())]
    Timeout { limit: Duration },
    /// The connection failed, was refused or was dropped.
    #[error("connection failed")]
    Connection(#[source] redis::RedisError),
}

impl SharedError {
    /// Whether Redis is (for now) out of reach, as opposed to a bug or misconfiguration.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, SharedError::Unavailable { .. })
    }

    /// Classifies an error of the `redis` crate met during `operation`.
    pub(crate) fn from_redis(operation: &'static str, error: redis::RedisError) -> Self {
        use redis::{ErrorKind, ServerErrorKind};
        let transient_server_state = matches!(
            error.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::ReadOnly
            )
        );
        if error.is_io_error()
            || error.is_timeout()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
            || error.is_unrecoverable_error()
            || transient_server_state
        {
            SharedError::Unavailable {
                operation,
                cause: Unreachable::Connection(error),
            }
        } else if error.kind() == ErrorKind::InvalidClientConfig {
            SharedError::Invalid {
                reason: format!("{operation}: {error}"),
                source: Some(error),
            }
        } else {
            SharedError::Rejected {
                operation,
                source: error,
            }
        }
    }

    pub(crate) fn timeout(operation: &'static str, limit: Duration) -> Self {
        SharedError::Unavailable {
            operation,
            cause: Unreachable::Timeout { limit },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_are_unavailable_and_script_errors_are_not() {
        let refused =
            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(SharedError::from_redis("ping", refused).is_unavailable());
        let loading = redis::RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading),
            "loading",
        ));
        assert!(SharedError::from_redis("ping", loading).is_unavailable());
        let wrong_type = redis::RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError),
            "WRONGTYPE",
        ));
        assert!(!SharedError::from_redis("get", wrong_type).is_unavailable());
        assert!(SharedError::timeout("get", Duration::from_millis(200)).is_unavailable());
    }
}
