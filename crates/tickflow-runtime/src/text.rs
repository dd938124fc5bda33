//! Small text helpers shared inside the crate.

/// Collapses a possibly multi-line message (TOML parse errors draw carets, anyhow chains and
/// panics may span lines) into one line: every line trimmed, blank ones dropped, joined by spaces.
pub(crate) fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
