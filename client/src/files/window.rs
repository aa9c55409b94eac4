//! A window of pipelined requests whose results come back in the order they were made.
//!
//! A transfer keeps many relay requests in flight on one connection. Blob writes must reach the
//! relay in offset order: [`Window::push`] polls each request once as soon as it is added, so it
//! takes its place in the connection's (first come, first served) send queue before any request
//! added after it. [`Window::next`] then yields the results oldest first, while every request
//! in the window keeps making progress.
//!
//! What it does not do: spawn tasks, retry, or know about relays; it works with any futures and
//! any async runtime.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

enum Slot<'a, T> {
    Running(Boxed<'a, T>),
    Done(T),
}

/// Requests in flight, oldest first.
pub(crate) struct Window<'a, T> {
    slots: VecDeque<Slot<'a, T>>,
}

impl<'a, T> Window<'a, T> {
    /// An empty window.
    pub(crate) fn new() -> Self {
        Window {
            slots: VecDeque::new(),
        }
    }

    /// How many requests have not been taken out yet.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Adds a request and starts it at once.
    pub(crate) async fn push(&mut self, fut: impl Future<Output = T> + Send + 'a) {
        let mut fut: Boxed<'a, T> = Box::pin(fut);
        let first = poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
        self.slots.push_back(match first {
            Poll::Ready(v) => Slot::Done(v),
            Poll::Pending => Slot::Running(fut),
        });
    }

    /// The result of the oldest request, once it is there; `None` when the window is empty.
    pub(crate) async fn next(&mut self) -> Option<T> {
        poll_fn(|cx| self.poll_front(cx)).await
    }

    /// Waits for every request still in the window, dropping their results, so that none is
    /// cut off halfway.
    pub(crate) async fn drain(&mut self) {
        while self.next().await.is_some() {}
    }

    fn poll_front(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        for slot in self.slots.iter_mut() {
            if let Slot::Running(fut) = slot {
                if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                    *slot = Slot::Done(v);
                }
            }
        }
        match self.slots.front() {
            None => Poll::Ready(None),
            Some(Slot::Running(_)) => Poll::Pending,
            Some(Slot::Done(_)) => match self.slots.pop_front() {
                Some(Slot::Done(v)) => Poll::Ready(Some(v)),
                _ => Poll::Pending,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn results_come_oldest_first_and_requests_start_in_order() {
        let started = Arc::new(Mutex::new(Vec::new()));
        let mut w = Window::new();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let mut rx = Some(rx);
        for i in 0..5u32 {
            let started = started.clone();
            let gate = if i == 0 { rx.take() } else { None };
            w.push(async move {
                started.lock().unwrap().push(i);
                if let Some(gate) = gate {
                    let _ = gate.await;
                }
                i
            })
            .await;
        }
        assert_eq!(*started.lock().unwrap(), vec![0, 1, 2, 3, 4]);
        assert_eq!(w.len(), 5);
        // The oldest is held back; the others finished, but wait their turn.
        tx.send(()).unwrap();
        let mut out = Vec::new();
        while let Some(v) = w.next().await {
            out.push(v);
        }
        assert_eq!(out, vec![0, 1, 2, 3, 4]);
    }
}
