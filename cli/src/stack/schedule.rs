//! The EventBridge schedule stand-in: runs the event sweeper every
//! [`SWEEP_PERIOD_SECS`](meeting_hooks::schema::SWEEP_PERIOD_SECS), as the template's
//! `Schedule` event invokes the Lambda, with the same wiring.

use std::time::Duration;

use meeting_hooks::aws::wiring;
use meeting_hooks::respond::now_ms;

/// Sweeps forever, one run per `period` (the first right away). A failed run is logged by
/// the sweep itself; the next tick tries again, as the next scheduled invocation would.
pub async fn run(sweeper: wiring::Sweeper, period: Duration) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let _ = sweeper.sweep(now_ms()).await;
    }
}

/// Reconciles forever, one run per `period` (the first after one period, so a webhook that is
/// on its way is not raced), as the template's schedule invokes the reconciler.
pub async fn reconcile(reconciler: wiring::Reconciler, period: Duration) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let _ = reconciler.run(now_ms()).await;
    }
}
