//! One cancellation tree and named, supervised tasks.
//!
//! A service spawns every long-running task through a [`Supervisor`], which runs it in a
//! `task` span carrying its name and watches it:
//!
//! - a task that returns `Err`, panics, or returns `Ok` while nobody asked it to stop has
//!   *failed*: the root [`CancellationToken`] is cancelled, so every other task starts to stop;
//! - [`Supervisor::wait`] returns when SIGINT or SIGTERM arrives, the root token is cancelled,
//!   or a task fails; it then cancels the tree and gives the tasks the drain deadline
//!   (default [`DEFAULT_DRAIN_TIMEOUT`]) to finish, aborting stragglers with a warning.
//!
//! Tasks must watch the token ([`Supervisor::token`]) and return `Ok(())` once it is cancelled.
//! A task that has finished its work and wants the whole process to stop cleanly (a backfill
//! job, say) cancels the token itself and returns `Ok(())`.
//!
//! [`wait`](Supervisor::wait) returns `Ok(())` after a clean shutdown and an error naming the
//! failed task otherwise. Have `main` return `anyhow::Result<()>` (or `Result<(), E>` with
//! `E: Debug`) and propagate it: a failure then exits with status 1 and the error on stderr.

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use crate::text::one_line;

use serde::{Deserialize, Serialize};
use tokio::task::{Id, JoinError, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

/// How long tasks get to finish after shutdown starts, unless configured otherwise.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Shutdown settings, usually the `shutdown` section of a service's config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    /// Milliseconds tasks get to finish after shutdown starts before they are aborted.
    /// Default 10000. Keep it below the orchestrator's own grace period (Kubernetes: 30 s).
    pub drain_timeout_ms: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            drain_timeout_ms: u64::try_from(DEFAULT_DRAIN_TIMEOUT.as_millis()).unwrap_or(10_000),
        }
    }
}

impl ShutdownConfig {
    /// The drain deadline as a [`Duration`].
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_millis(self.drain_timeout_ms)
    }
}

/// Why the supervised tasks stopped other than by a clean shutdown.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// A task returned an error.
    #[error("task `{task}` failed: {error}")]
    TaskFailed {
        /// The task's name.
        task: String,
        /// Its error, on one line (with the chain of causes, for `anyhow` errors).
        error: String,
    },
    /// A task panicked.
    #[error("task `{task}` panicked: {message}")]
    TaskPanicked {
        /// The task's name.
        task: String,
        /// The panic message, on one line.
        message: String,
    },
    /// A task returned `Ok` although no shutdown was requested.
    #[error(
        "task `{task}` exited before shutdown was requested; a supervised task must run until \
         the token is cancelled (a task that is done should cancel the token to stop the \
         process cleanly)"
    )]
    TaskExited {
        /// The task's name.
        task: String,
    },
    /// A task was aborted by something other than the supervisor.
    #[error("task `{task}` was cancelled from outside the supervisor")]
    TaskCancelled {
        /// The task's name.
        task: String,
    },
    /// A signal handler could not be installed.
    #[error("cannot listen for {signal}: {reason}")]
    Signal {
        /// The signal, e.g. `SIGTERM`.
        signal: &'static str,
        /// Why not.
        reason: String,
    },
}

impl SupervisorError {
    /// The name of the task that failed, if a task did.
    pub fn task(&self) -> Option<&str> {
        match self {
            Self::TaskFailed { task, .. }
            | Self::TaskPanicked { task, .. }
            | Self::TaskExited { task }
            | Self::TaskCancelled { task } => Some(task),
            Self::Signal { .. } => None,
        }
    }
}

/// How a task's future ended (panics arrive as a [`JoinError`] instead).
#[derive(Debug)]
enum Outcome {
    /// Returned `Ok` after shutdown was requested.
    Stopped,
    /// Returned an error (formatted on one line).
    Failed(String),
    /// Returned `Ok` while no shutdown was requested.
    ExitedEarly,
}

/// Spawns and watches named tasks under one root [`CancellationToken`]; see the
/// [module docs](self).
#[derive(Debug)]
pub struct Supervisor {
    root: CancellationToken,
    tasks: JoinSet<Outcome>,
    names: HashMap<Id, String>,
    drain_timeout: Duration,
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new(CancellationToken::new())
    }
}

impl Supervisor {
    /// A supervisor over the tree rooted at `root`, with the default drain deadline.
    pub fn new(root: CancellationToken) -> Self {
        Self {
            root,
            tasks: JoinSet::new(),
            names: HashMap::new(),
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }

    /// Sets the drain deadline.
    pub fn with_drain_timeout(mut self, drain_timeout: Duration) -> Self {
        self.drain_timeout = drain_timeout;
        self
    }

    /// The root token. Tasks stop when it is cancelled; cancelling it requests a clean
    /// shutdown of everything.
    pub fn token(&self) -> CancellationToken {
        self.root.clone()
    }

    /// How many tasks are still running (or finished but not yet collected by [`wait`]).
    ///
    /// [`wait`]: Self::wait
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether no task has been spawned (or all were collected).
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Spawns `task` as `name`, in a `task` span with a `task` field holding the name.
    ///
    /// The task must run until [`token`](Self::token) is cancelled and then return `Ok(())`.
    /// Any `Err` (formatted with `{:#}`, which prints an `anyhow` error's causes too), a panic,
    /// or an `Ok` before cancellation cancels the whole tree and makes [`wait`](Self::wait)
    /// return an error naming `name`. Must be called inside a tokio runtime.
    pub fn spawn<F, E>(&mut self, name: impl Into<String>, task: F)
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Display + Send + 'static,
    {
        let name = name.into();
        let root = self.root.clone();
        let span = tracing::info_span!("task", task = %name);
        let supervised = async move {
            tracing::debug!("task started");
            let outcome = match task.await {
                Ok(()) if root.is_cancelled() => Outcome::Stopped,
                Ok(()) => Outcome::ExitedEarly,
                Err(error) => Outcome::Failed(one_line(&format!("{error:#}"))),
            };
            match &outcome {
                Outcome::Stopped => tracing::debug!("task stopped"),
                Outcome::Failed(error) => {
                    tracing::error!(%error, "task failed; shutting down");
                    root.cancel();
                }
                Outcome::ExitedEarly => {
                    tracing::error!("task exited before shutdown was requested; shutting down");
                    root.cancel();
                }
            }
            outcome
        }
        .instrument(span);
        let handle = self.tasks.spawn(supervised);
        self.names.insert(handle.id(), name);
    }

    /// Runs until SIGINT or SIGTERM (see [`shutdown_signal`]), a task failure or cancellation of
    /// the root token, then drains; see [`wait_until`](Self::wait_until).
    pub async fn wait(self) -> Result<(), SupervisorError> {
        let signal = shutdown_signal()?;
        self.wait_until(signal).await
    }

    /// Runs until `signal` completes, a task fails, or the root token is cancelled. Then
    /// cancels the root token, waits up to the drain deadline for every task to finish, and
    /// aborts the rest (logging their names).
    ///
    /// Returns `Ok(())` when no task failed, the first failure otherwise (a failure that
    /// happens while draining counts too: a task that could not flush on its way out).
    pub async fn wait_until(
        mut self,
        signal: impl Future<Output = ()>,
    ) -> Result<(), SupervisorError> {
        let mut failure: Option<SupervisorError> = None;
        let signal = std::pin::pin!(signal);
        let root = self.root.clone();
        tokio::select! {
            () = signal => tracing::info!("shutdown requested; stopping tasks"),
            () = root.cancelled() => tracing::info!("shutdown started; stopping tasks"),
            () = self.until_first_failure(&mut failure) => {}
        }
        self.root.cancel();

        let drain_timeout = self.drain_timeout;
        if tokio::time::timeout(drain_timeout, self.drain(&mut failure))
            .await
            .is_err()
        {
            let mut stragglers: Vec<&str> = self.names.values().map(String::as_str).collect();
            stragglers.sort_unstable();
            tracing::warn!(
                tasks = ?stragglers,
                drain_timeout_ms = u64::try_from(drain_timeout.as_millis()).unwrap_or(u64::MAX),
                "tasks did not stop within the drain deadline; aborting them"
            );
            self.tasks.abort_all();
        }
        match failure {
            Some(error) => Err(error),
            None => {
                tracing::info!("all tasks stopped");
                Ok(())
            }
        }
    }

    /// Collects finished tasks until one has failed (or none are left).
    async fn until_first_failure(&mut self, failure: &mut Option<SupervisorError>) {
        while failure.is_none() {
            match self.tasks.join_next_with_id().await {
                Some(joined) => self.collect(joined, failure),
                None => return,
            }
        }
    }

    /// Collects every task.
    async fn drain(&mut self, failure: &mut Option<SupervisorError>) {
        while let Some(joined) = self.tasks.join_next_with_id().await {
            self.collect(joined, failure);
        }
    }

    /// Records how one task ended, keeping the first failure.
    fn collect(
        &mut self,
        joined: Result<(Id, Outcome), JoinError>,
        failure: &mut Option<SupervisorError>,
    ) {
        let error = match joined {
            Ok((id, outcome)) => {
                let task = self.take_name(id);
                match outcome {
                    Outcome::Stopped => None,
                    Outcome::Failed(error) => Some(SupervisorError::TaskFailed { task, error }),
                    Outcome::ExitedEarly => Some(SupervisorError::TaskExited { task }),
                }
            }
            Err(join_error) => {
                let task = self.take_name(join_error.id());
                if join_error.is_panic() {
                    let message = one_line(&panic_message(join_error.into_panic()));
                    tracing::error!(task = %task, panic = %message, "task panicked; shutting down");
                    Some(SupervisorError::TaskPanicked { task, message })
                } else {
                    tracing::error!(task = %task, "task was cancelled from outside; shutting down");
                    Some(SupervisorError::TaskCancelled { task })
                }
            }
        };
        if let Some(error) = error {
            self.root.cancel();
            if failure.is_none() {
                *failure = Some(error);
            }
        }
    }

    fn take_name(&mut self, id: Id) -> String {
        self.names
            .remove(&id)
            .unwrap_or_else(|| format!("<unnamed task {id}>"))
    }
}

/// A token that is cancelled on the first SIGINT or SIGTERM: what a service's `main` hands to
/// its `run(shutdown)`. Call it inside a tokio runtime.
pub fn cancel_on_signal() -> Result<CancellationToken, SupervisorError> {
    let signal = shutdown_signal()?;
    let token = CancellationToken::new();
    let on_signal = token.clone();
    tokio::spawn(async move {
        signal.await;
        on_signal.cancel();
    });
    Ok(token)
}

/// Completes on the first SIGINT or SIGTERM. The handlers are installed when this is called
/// (so a signal that arrives before the future is first polled is not lost); call it inside a
/// tokio runtime.
pub fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static, SupervisorError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(SupervisorError::Signal {
            signal: "SIGINT/SIGTERM",
            reason: "not inside a tokio runtime; call it from async code".to_owned(),
        });
    }
    os_signals()
}

#[cfg(unix)]
fn os_signals() -> Result<impl Future<Output = ()> + Send + 'static, SupervisorError> {
    use tokio::signal::unix::{SignalKind, signal};
    let install = |kind: SignalKind, name: &'static str| {
        signal(kind).map_err(|error| SupervisorError::Signal {
            signal: name,
            reason: error.to_string(),
        })
    };
    let mut interrupt = install(SignalKind::interrupt(), "SIGINT")?;
    let mut terminate = install(SignalKind::terminate(), "SIGTERM")?;
    Ok(async move {
        let name = tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        };
        tracing::info!(signal = name, "received shutdown signal");
    })
}

#[cfg(not(unix))]
fn os_signals() -> Result<impl Future<Output = ()> + Send + 'static, SupervisorError> {
    Ok(async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C; shutting down");
        }
    })
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(message) => (*message).to_owned(),
            Err(_) => "(a non-string panic payload)".to_owned(),
        },
    }
}
