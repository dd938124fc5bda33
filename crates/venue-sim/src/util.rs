//! Small helpers shared by the simulators.

use std::sync::{Mutex, MutexGuard};

/// Locks a mutex, tolerating poisoning (the data is plain bookkeeping).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Appends `s` as a JSON string literal (quoted and escaped).
pub(crate) fn push_json_str(buf: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        buf.push('"');
        buf.push_str(s);
        buf.push('"');
    } else {
        // Serialising a `&str` cannot fail; the fallback only keeps the text well formed.
        match serde_json::to_string(s) {
            Ok(quoted) => buf.push_str(&quoted),
            Err(_) => buf.push_str("\"\""),
        }
    }
}
