//! Small helpers shared by the simulators.

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};

use axum::Router;
use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Locks a mutex, tolerating poisoning (the data is plain bookkeeping).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Binds `addr` and serves `app` over HTTP/1.1 (no Nagle delay) until `shutdown` is cancelled;
/// returns the bound address. The HTTP simulators' common start.
pub(crate) async fn serve_http(
    addr: SocketAddr,
    app: Router,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move {
        // Serving only ends at shutdown; accept errors are handled inside `serve`.
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
    });
    Ok(addr)
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

/// `units` (positive) times 10^-`decimals` as a lexeme, e.g. `(108000, 5)` → `"1.08000"`.
pub(crate) fn decimal(units: i64, decimals: u32) -> String {
    let scale = 10_i64.pow(decimals);
    let width = decimals as usize;
    format!("{}.{:0width$}", units / scale, units % scale)
}

/// FNV-1a, to fold the instrument name into the seed.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// The splitmix64 generator: tiny, fast and good enough for test data.
#[derive(Debug)]
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-ish in `0..n` (`n` small and positive; the modulo bias is irrelevant here).
    pub(crate) fn below(&mut self, n: u64) -> i64 {
        i64::try_from(self.next() % n.max(1)).unwrap_or(0)
    }
}
