//! Work that blocks (files, name look-ups, connection probes, programs run to their end,
//! threads joined), run on a thread where blocking is allowed instead of on the async
//! runtime's own, which would stall every task on it meanwhile.

use crate::error::Error;

/// Runs `work` on a blocking thread and waits for its answer.
///
/// # Errors
/// `work`'s own, or [`Error::Task`] when it panicked.
pub async fn run<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    actix_web::rt::task::spawn_blocking(work).await?
}
