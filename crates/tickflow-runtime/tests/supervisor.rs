//! Supervised tasks: failure propagation, panics, clean shutdown and the drain deadline.
//!
//! Time is paused (`start_paused`), so deadlines elapse instantly and deterministically; the
//! tests synchronise on channels and tokens, never on sleeps.

mod common;

use common::Capture;
use std::time::Duration;

use tickflow_runtime::CancellationToken;
use tickflow_runtime::supervisor::{
    DEFAULT_DRAIN_TIMEOUT, Supervisor, SupervisorError, shutdown_signal,
};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// A task that runs until cancelled, then reports that it stopped.
async fn polite(token: CancellationToken, stopped: oneshot::Sender<()>) -> Result<(), String> {
    token.cancelled().await;
    let _ = stopped.send(());
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_failing_task_cancels_its_siblings_and_is_named() {
    let mut supervisor = Supervisor::new(CancellationToken::new());
    let (stopped_tx, stopped_rx) = oneshot::channel();
    supervisor.spawn("pulsar producer", polite(supervisor.token(), stopped_tx));
    supervisor.spawn("kraken feed", async {
        Err::<(), _>(anyhow::anyhow!("connection reset by peer").context("reading frames"))
    });

    let err = supervisor
        .wait_until(std::future::pending())
        .await
        .unwrap_err();
    assert!(matches!(err, SupervisorError::TaskFailed { .. }), "{err:?}");
    assert_eq!(err.task(), Some("kraken feed"));
    assert_eq!(
        err.to_string(),
        "task `kraken feed` failed: reading frames: connection reset by peer"
    );
    stopped_rx
        .await
        .expect("the sibling saw the cancellation and stopped");
}

#[tokio::test(start_paused = true)]
async fn a_panicking_task_is_a_failure_with_its_name() {
    let mut supervisor = Supervisor::new(CancellationToken::new());
    let token = supervisor.token();
    let (stopped_tx, stopped_rx) = oneshot::channel();
    supervisor.spawn("sink", polite(supervisor.token(), stopped_tx));
    supervisor.spawn("parser", async {
        let frames: Vec<u8> = Vec::new();
        if frames.is_empty() {
            panic!("bad frame:\nunexpected end");
        }
        Ok::<(), String>(())
    });

    let err = supervisor
        .wait_until(std::future::pending())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SupervisorError::TaskPanicked { task, message }
            if task == "parser" && message == "bad frame: unexpected end"),
        "{err:?}"
    );
    assert!(token.is_cancelled());
    stopped_rx.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_signal_drains_every_task_and_returns_ok() {
    let mut supervisor = Supervisor::new(CancellationToken::new());
    let mut stopped = Vec::new();
    for name in ["admin server", "kraken feed", "pulsar producer"] {
        let (tx, rx) = oneshot::channel();
        supervisor.spawn(name, polite(supervisor.token(), tx));
        stopped.push(rx);
    }
    let (signal_tx, signal_rx) = oneshot::channel::<()>();
    let waiting = tokio::spawn(supervisor.wait_until(async move {
        let _ = signal_rx.await;
    }));
    signal_tx.send(()).unwrap();

    waiting.await.unwrap().expect("a clean shutdown is Ok");
    for rx in stopped {
        rx.await.expect("every task stopped before wait returned");
    }
}

#[tokio::test(start_paused = true)]
async fn cancelling_the_root_token_is_a_clean_shutdown() {
    let mut supervisor = Supervisor::new(CancellationToken::new());
    let token = supervisor.token();
    let (tx, rx) = oneshot::channel();
    supervisor.spawn("feed", polite(supervisor.token(), tx));
    supervisor.spawn("backfill", async move {
        // Done with its work: asks for a clean stop of the whole process.
        token.cancel();
        Ok::<(), String>(())
    });
    supervisor.wait_until(std::future::pending()).await.unwrap();
    rx.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_task_that_returns_early_is_a_failure() {
    let mut supervisor = Supervisor::new(CancellationToken::new());
    let (tx, _rx) = oneshot::channel();
    supervisor.spawn("feed", polite(supervisor.token(), tx));
    supervisor.spawn("watchdog", async { Ok::<(), String>(()) });
    let err = supervisor
        .wait_until(std::future::pending())
        .await
        .unwrap_err();
    assert!(matches!(err, SupervisorError::TaskExited { .. }), "{err:?}");
    assert_eq!(err.task(), Some("watchdog"));
}

#[tokio::test(start_paused = true)]
async fn a_failure_while_draining_is_reported() {
    let mut supervisor = Supervisor::new(CancellationToken::new());
    let token = supervisor.token();
    supervisor.spawn("sink", async move {
        token.cancelled().await;
        Err::<(), _>("could not commit the last batch")
    });
    let err = supervisor.wait_until(async {}).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "task `sink` failed: could not commit the last batch"
    );
}

#[tokio::test(start_paused = true)]
async fn the_first_failure_wins() {
    let mut supervisor = Supervisor::new(CancellationToken::new());
    let token = supervisor.token();
    supervisor.spawn("first", async { Err::<(), _>("boom") });
    supervisor.spawn("second", async move {
        token.cancelled().await;
        Err::<(), _>("failed while stopping")
    });
    let err = supervisor
        .wait_until(std::future::pending())
        .await
        .unwrap_err();
    assert_eq!(err.task(), Some("first"));
}

#[tokio::test(start_paused = true)]
async fn a_task_that_ignores_cancellation_is_aborted_at_the_deadline() {
    let logs = Capture::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // Current-thread runtime: every task runs on this thread, under this subscriber.
    let _default = tracing::subscriber::set_default(subscriber);

    let deadline = Duration::from_secs(3);
    let mut supervisor = Supervisor::new(CancellationToken::new()).with_drain_timeout(deadline);
    let (polite_tx, polite_rx) = oneshot::channel();
    supervisor.spawn("feed", polite(supervisor.token(), polite_tx));
    let (alive_tx, alive_rx) = oneshot::channel::<()>();
    supervisor.spawn("stubborn", async move {
        let _alive = alive_tx; // dropped when the task is aborted
        std::future::pending::<()>().await;
        Ok::<(), String>(())
    });

    let start = Instant::now();
    supervisor
        .wait_until(async {})
        .await
        .expect("stragglers are aborted with a warning, not an error");
    let waited = start.elapsed();
    assert!(
        waited >= deadline && waited < deadline + Duration::from_secs(1),
        "{waited:?}"
    );
    polite_rx.await.unwrap();
    assert!(alive_rx.await.is_err(), "the stubborn task was aborted");

    let text = logs.text();
    let warning = text
        .lines()
        .find(|line| line.contains("drain deadline"))
        .unwrap_or_else(|| panic!("no drain warning in:\n{text}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("stubborn"), "{warning}");
    assert!(!warning.contains("feed"), "{warning}");
}

#[tokio::test(start_paused = true)]
async fn the_default_drain_deadline_is_ten_seconds() {
    assert_eq!(DEFAULT_DRAIN_TIMEOUT, Duration::from_secs(10));
    let mut supervisor = Supervisor::default();
    supervisor.spawn("stubborn", async {
        std::future::pending::<()>().await;
        Ok::<(), String>(())
    });
    let start = Instant::now();
    supervisor.wait_until(async {}).await.unwrap();
    assert!(start.elapsed() >= Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn no_tasks_returns_at_once() {
    let supervisor = Supervisor::default();
    assert!(supervisor.is_empty());
    supervisor.wait_until(std::future::pending()).await.unwrap();
}

#[tokio::test]
async fn the_real_signal_future_installs_inside_a_runtime() {
    // Only installs the handlers; sending a signal to the test process would be unsafe.
    let signal = shutdown_signal().unwrap();
    drop(signal);
}

#[test]
fn the_real_signal_future_needs_a_runtime() {
    let Err(err) = shutdown_signal() else {
        panic!("installed signal handlers outside a runtime");
    };
    assert!(
        err.to_string().contains("not inside a tokio runtime"),
        "{err}"
    );
}
