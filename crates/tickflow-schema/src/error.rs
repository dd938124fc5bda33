use crate::SymbolError;

/// Why a message could not be turned into a domain tick. None of these is worth retrying: the
/// same bytes fail the same way, so a consumer skips (and counts) or dead-letters the message.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The bytes are not a protobuf `TickMessage`.
    #[error("not a tickflow.v1.TickMessage: {0}")]
    Decode(#[from] prost::DecodeError),
    /// The bytes break the protobuf wire format in a way the decoder names.
    #[error("not a tickflow.v1.TickMessage: {0}")]
    Malformed(&'static str),
    /// The message has no body, or one this version does not know (a newer producer).
    #[error("TickMessage has no body this version knows (empty or from a newer schema)")]
    UnknownBody,
    /// A required field is absent.
    #[error("{message}.{field} is missing")]
    MissingField {
        /// Message name, e.g. `Trade`.
        message: &'static str,
        /// Field name, e.g. `price`.
        field: &'static str,
    },
    /// The `source` field names no venue tickflow knows.
    #[error("unknown source {0:?} (known: kraken, oanda, dukascopy)")]
    UnknownSource(String),
    /// The `symbol` field is not a canonical symbol.
    #[error("invalid symbol: {0}")]
    Symbol(#[from] SymbolError),
    /// A decimal's scale is beyond the 28 digits a 96-bit coefficient can carry.
    #[error("decimal scale {0} is out of range (at most 28)")]
    DecimalScale(u32),
}
