//! What is wrong with a query, by the part of the request that is wrong.

/// An invalid (or too wide) query: `field` names the part of the request (`metrics[1]`,
/// `date_range`, `filters[0][2]`), `message` says what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct QueryError {
    pub field: String,
    pub message: String,
    /// True when the message is about the part alone (`Invalid metric "baa"`), false when it
    /// states a rule between parts (`Metric ... cannot be queried with ...`).
    pub located: bool,
}

impl QueryError {
    /// A part of the request that is wrong in itself.
    pub fn at(field: impl Into<String>, message: impl Into<String>) -> Self {
        QueryError {
            field: field.into(),
            message: message.into(),
            located: true,
        }
    }

    /// A rule between parts of the request that it breaks; `field` is the part to change.
    pub fn rule(field: impl Into<String>, message: impl Into<String>) -> Self {
        QueryError {
            located: false,
            ..QueryError::at(field, message)
        }
    }

    /// The problem in one line, as Plausible's Stats API words its `error`:
    /// `#/metrics/1: Invalid metric "baa"` for a part, the rule itself for a rule.
    pub fn summary(&self) -> String {
        if !self.located {
            return self.message.clone();
        }
        let pointer: String = self
            .field
            .chars()
            .filter(|c| *c != ']')
            .map(|c| if c == '[' || c == '.' { '/' } else { c })
            .collect();
        format!("#/{pointer}: {}", self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_point_at_the_part_as_plausible_does() {
        assert_eq!(
            QueryError::at("metrics[1]", "Invalid metric \"baa\"").summary(),
            "#/metrics/1: Invalid metric \"baa\""
        );
        assert_eq!(
            QueryError::at("include.comparisons.mode", "bad").summary(),
            "#/include/comparisons/mode: bad"
        );
        assert_eq!(QueryError::rule("metrics", "No.").summary(), "No.");
    }
}
