//! The stall gate: while it is closed, no byte is written to any client socket.
//!
//! The writer task already discards frames while stalled, but tungstenite writes on its own too (it
//! answers WebSocket Ping control frames and Close frames from inside `read`). Wrapping the socket in
//! [`GatedIo`] makes a stall total: writes park until the gate opens again, reads go on.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::util::lock;

/// Open (the default) or closed (stalled). Tasks waiting for it to open are woken when it does.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    closed: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
}

impl Gate {
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn set_closed(&self, closed: bool) {
        self.closed.store(closed, Ordering::Release);
        if !closed {
            let wakers = std::mem::take(&mut *lock(&self.wakers));
            for waker in wakers {
                waker.wake();
            }
        }
    }

    /// Ready when the gate is open; otherwise registers the task to be woken when it opens.
    pub(crate) fn poll_open(&self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.is_closed() {
            return Poll::Ready(());
        }
        let mut wakers = lock(&self.wakers);
        // Re-check under the lock: `set_closed(false)` stores before it takes the wakers.
        if !self.is_closed() {
            return Poll::Ready(());
        }
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Waits until the gate is open.
    pub(crate) async fn opened(&self) {
        std::future::poll_fn(|cx| self.poll_open(cx)).await;
    }
}

/// A TCP stream whose writes wait while the gate is closed (once `armed`, i.e. after the handshake).
#[derive(Debug)]
pub(crate) struct GatedIo {
    pub(crate) io: TcpStream,
    pub(crate) gate: Arc<Gate>,
    pub(crate) armed: bool,
}

impl GatedIo {
    fn poll_gate(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.armed {
            self.gate.poll_open(cx)
        } else {
            Poll::Ready(())
        }
    }
}

impl AsyncRead for GatedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for GatedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.poll_gate(cx).is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.poll_gate(cx).is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.poll_gate(cx).is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
