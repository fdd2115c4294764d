//! A request body that must keep arriving: a body stalled or trickled a
//! byte at a time is cut off instead of holding its connection open.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Buf;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// The boxed error every body layer here reports.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How fast a request body must arrive: all of it within `grace`, plus one
/// second for every `min_bytes_per_second` bytes received (the allowance
/// grows as bytes come, so an honest large upload is never cut off, while
/// a trickle falls behind at once). `min_bytes_per_second == 0` leaves only
/// `grace`, for the whole body.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BodyRate {
    pub(crate) grace: Duration,
    pub(crate) min_bytes_per_second: u64,
}

impl BodyRate {
    /// How long a body that has sent `received` bytes may have taken.
    fn allowance(&self, received: u64) -> Duration {
        if self.min_bytes_per_second == 0 {
            return self.grace;
        }
        // Whole seconds and the rest apart, so no float and no overflow.
        let seconds = received / self.min_bytes_per_second;
        let rest = received % self.min_bytes_per_second;
        let nanos = rest.saturating_mul(1_000_000_000) / self.min_bytes_per_second;
        self.grace
            .saturating_add(Duration::from_secs(seconds))
            .saturating_add(Duration::from_nanos(nanos))
    }
}

/// The body fell behind its [`BodyRate`].
#[derive(Debug, thiserror::Error)]
#[error("the request body arrived too slowly")]
pub(crate) struct BodyTooSlow;

/// `inner`, cut off with [`BodyTooSlow`] once it falls behind `rate`.
pub(crate) struct MinRate<B> {
    inner: B,
    rate: BodyRate,
    started: Instant,
    received: u64,
    deadline: Pin<Box<Sleep>>,
}

impl<B> MinRate<B> {
    /// Starts the clock now.
    pub(crate) fn new(inner: B, rate: BodyRate) -> Self {
        let started = Instant::now();
        Self {
            inner,
            rate,
            started,
            received: 0,
            deadline: Box::pin(tokio::time::sleep_until(started + rate.allowance(0))),
        }
    }
}

impl<B> Body for MinRate<B>
where
    B: Body + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received = this.received.saturating_add(data.remaining() as u64);
                    let deadline = this.started + this.rate.allowance(this.received);
                    this.deadline.as_mut().reset(deadline);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTooSlow)))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allowance_grows_with_the_bytes_received() {
        let rate = BodyRate {
            grace: Duration::from_secs(10),
            min_bytes_per_second: 1000,
        };
        assert_eq!(rate.allowance(0), Duration::from_secs(10));
        assert_eq!(rate.allowance(1500), Duration::from_millis(11_500));
        assert_eq!(rate.allowance(u64::MAX), rate.allowance(u64::MAX));
        let no_rate = BodyRate {
            min_bytes_per_second: 0,
            ..rate
        };
        assert_eq!(no_rate.allowance(1 << 40), Duration::from_secs(10));
    }
}
