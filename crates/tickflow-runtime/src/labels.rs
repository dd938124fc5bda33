//! The one-label sets every service's metrics use: `{class="…"}`, `{reason="…"}` and so on.
//! Each is a struct with one `&'static str` field named like the label, so that a metric family
//! is keyed without allocating.

use prometheus_client::encoding::EncodeLabelSet;

macro_rules! labels {
    ($($(#[$doc:meta])* $name:ident { $field:ident })*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
            pub struct $name {
                /// The label's value.
                pub $field: &'static str,
            }
        )*
    };
}

labels! {
    /// A `class` label (what kind of input: `price`, `heartbeat`, `malformed`…).
    ClassLabel { class }
    /// A `reason` label (why something was skipped, retried or missing).
    ReasonLabel { reason }
    /// A `status` label (an HTTP status class, a coverage status…).
    StatusLabel { status }
    /// A `channel` label (`trade`, `ticker`).
    ChannelLabel { channel }
    /// A `table` label (`trades`, `quotes`, `gaps`, `coverage`).
    TableLabel { table }
    /// A `kind` label (`trade`, `quote`, `gap`, `coverage`).
    KindLabel { kind }
    /// An `outcome` label (`ok`, `done`, `failed`…).
    OutcomeLabel { outcome }
    /// An `error` label (the class of the last error).
    ErrorLabel { error }
}
