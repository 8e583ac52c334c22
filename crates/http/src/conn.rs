//! Connection-level bounds that `axum::serve` does not offer: a cap on open connections, and
//! deadlines that close connections left idle or dribbling a request.
//!
//! `axum::serve` builds hyper's connection builder itself and sets no timer, so hyper's
//! `header_read_timeout` never fires there, and a client may hold a connection open forever by
//! sending nothing, or a header a byte at a time. Rather than re-implement `axum::serve`, the
//! bounds live in the listener and the stream it hands out.

use std::future::Future;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// How many connections may be open, and how long each may go without progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnLimits {
    /// Open connections at most; the next one waits in the kernel's accept queue.
    pub max_connections: usize,
    /// A connection with no request under way is closed after this long: keep-alive idle time,
    /// and the wait for the first byte of a new connection.
    pub idle_timeout: Duration,
    /// From the first byte of a request to the first byte of its response. Covers reading the
    /// header (a slow client) and the handler, so it must exceed [`crate::REQUEST_TIMEOUT`] for
    /// the 408 answer to get out.
    pub request_deadline: Duration,
}

impl Default for ConnLimits {
    fn default() -> ConnLimits {
        ConnLimits {
            max_connections: 128,
            idle_timeout: Duration::from_secs(30),
            request_deadline: crate::REQUEST_TIMEOUT + Duration::from_secs(5),
        }
    }
}

pub(crate) struct BoundedListener {
    inner: TcpListener,
    slots: Arc<Semaphore>,
    limits: ConnLimits,
    open: Registry,
}

impl BoundedListener {
    pub(crate) fn new(inner: TcpListener, limits: ConnLimits) -> BoundedListener {
        BoundedListener {
            inner,
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            limits,
            open: Registry::default(),
        }
    }
}

/// What the listener knows of each open connection: since when it is idle (no request under
/// way), and a way to close it to make room.
#[derive(Debug, Default)]
struct ConnState {
    idle_since: std::sync::Mutex<Option<Instant>>,
    evicted: std::sync::atomic::AtomicBool,
    waker: std::sync::Mutex<Option<std::task::Waker>>,
}

#[derive(Clone, Debug, Default)]
struct Registry(Arc<std::sync::Mutex<Vec<std::sync::Weak<ConnState>>>>);

impl Registry {
    fn add(&self) -> Arc<ConnState> {
        let st =
            Arc::new(ConnState { idle_since: std::sync::Mutex::new(Some(Instant::now())), ..ConnState::default() });
        let mut all = self.0.lock().expect("registry");
        all.retain(|w| w.strong_count() > 0);
        all.push(Arc::downgrade(&st));
        st
    }

    /// Closes the connection idle the longest, if any is idle: a flood of idle connections
    /// must not keep a liveness probe out. Returns whether one was closed.
    fn evict_oldest_idle(&self) -> bool {
        let all = self.0.lock().expect("registry");
        let oldest = all
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .filter(|c| !c.evicted.load(std::sync::atomic::Ordering::Relaxed))
            .filter_map(|c| {
                let since = (*c.idle_since.lock().expect("idle"))?;
                Some((since, c))
            })
            .min_by_key(|(since, _)| *since);
        let Some((_, c)) = oldest else { return false };
        c.evicted.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(w) = c.waker.lock().expect("waker").take() {
            w.wake();
        }
        true
    }
}

impl axum::serve::Listener for BoundedListener {
    type Io = BoundedIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (BoundedIo, SocketAddr) {
        // Past the cap, the connection idle the longest is closed to make room; when none is
        // idle (every one has a request under way) the new one waits for a slot, and the ones
        // after it wait in the kernel's accept queue.
        let (io, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        let slot = match self.slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if self.open.evict_oldest_idle() {
                    tracing::debug!("connection cap reached: closed the connection idle the longest");
                }
                self.slots.clone().acquire_owned().await.expect("the semaphore is never closed")
            }
        };
        (BoundedIo::new(io, slot, self.limits, self.open.add()), addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// A TCP stream whose reads and writes fail with `TimedOut` once its deadline passes while they
/// wait. The deadline is `idle_timeout` from the open and from each response, and
/// `request_deadline` from the first byte of each request; bytes trickling in do not move it.
pub(crate) struct BoundedIo {
    io: TcpStream,
    _slot: OwnedSemaphorePermit,
    limits: ConnLimits,
    in_request: bool,
    deadline: Pin<Box<Sleep>>,
    state: Arc<ConnState>,
}

impl BoundedIo {
    fn new(io: TcpStream, slot: OwnedSemaphorePermit, limits: ConnLimits, state: Arc<ConnState>) -> BoundedIo {
        let deadline = Box::pin(tokio::time::sleep(limits.idle_timeout));
        BoundedIo { io, _slot: slot, limits, in_request: false, deadline, state }
    }

    /// Called when the stream would wait: registers for the deadline and fails if it has passed
    /// (or if the listener closed this idle connection to make room).
    fn expired(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if !self.in_request && self.state.evicted.load(std::sync::atomic::Ordering::Relaxed) {
            tracing::debug!(peer = ?self.io.peer_addr().ok(), "closing http connection: idle, and its slot is needed");
            return Err(io::Error::new(io::ErrorKind::TimedOut, "closed to make room for a new connection"));
        }
        *self.state.waker.lock().expect("waker") = Some(cx.waker().clone());
        if self.deadline.as_mut().poll(cx).is_pending() {
            return Ok(());
        }
        let what = if self.in_request { "request not completed in time" } else { "connection idle too long" };
        tracing::debug!(peer = ?self.io.peer_addr().ok(), "closing http connection: {what}");
        Err(io::Error::new(io::ErrorKind::TimedOut, what))
    }

    fn read_some(&mut self) {
        if !self.in_request {
            self.in_request = true;
            *self.state.idle_since.lock().expect("idle") = None;
            self.deadline.as_mut().reset(Instant::now() + self.limits.request_deadline);
        }
    }

    fn wrote_some(&mut self) {
        if self.in_request {
            self.in_request = false;
            *self.state.idle_since.lock().expect("idle") = Some(Instant::now());
            self.deadline.as_mut().reset(Instant::now() + self.limits.idle_timeout);
        }
    }

    fn after_write(&mut self, cx: &mut Context<'_>, polled: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        match polled {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.wrote_some();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            // A client that stops reading its response is as slow as one that stops sending.
            Poll::Pending => {
                self.expired(cx)?;
                Poll::Pending
            }
        }
    }
}

impl AsyncRead for BoundedIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.read_some();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                this.expired(cx)?;
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for BoundedIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        this.after_write(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.after_write(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
