//! The virtual clock every profile runs on: the event queue, the one loop
//! that drives a profile's actors from deadline to deadline, and a table of
//! named timers (the shape of quinn-proto's `connection/timer.rs`: the next
//! deadline is the table's earliest, and what fired is one match over the
//! timers that are due). Time moves only here, by jumping to the next thing
//! due; nothing reads a real clock.

use crate::timeline::Micros;
use crate::verdict::{Violation, secs};
use std::collections::BinaryHeap;

/// The event queue: earliest first, equal times in insertion order.
pub struct EventQueue<E> {
    heap: BinaryHeap<Queued<E>>,
    seq: u64,
}

/// An event with its key; ordered so the max-heap yields the earliest
/// `(at, seq)` first. `seq` is unique, so the key alone decides.
struct Queued<E> {
    at: Micros,
    seq: u64,
    ev: E,
}

impl<E> PartialEq for Queued<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<E> Eq for Queued<E> {}

impl<E> PartialOrd for Queued<E> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Queued<E> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    pub fn new() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }
    pub fn push(&mut self, at: Micros, ev: E) {
        self.heap.push(Queued {
            at,
            seq: self.seq,
            ev,
        });
        self.seq += 1;
    }
    pub fn peek_time(&self) -> Option<Micros> {
        self.heap.peek().map(|q| q.at)
    }
    pub fn pop(&mut self) -> Option<(Micros, E)> {
        self.heap.pop().map(|q| (q.at, q.ev))
    }
    pub fn len(&self) -> usize {
        self.heap.len()
    }
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// A model's default bound on steps: past it the run is in a livelock (a
/// 24 h idle SPICE session takes about 70 000).
pub const MAX_STEPS: u64 = 5_000_000;

/// A model the loop can drive: what is due next, and doing it.
pub trait Stepper {
    type Ev;
    /// The next thing due and when; `None` when nothing ever will be.
    fn next_event(&mut self) -> Option<(Micros, Self::Ev)>;
    fn step(&mut self, now: Micros, ev: Self::Ev);
}

/// The one simulation loop: drives `s` through everything due up to
/// `horizon`, in time order, within `max_steps`. Returns the steps taken,
/// and the violation when the bound cut the run short.
pub fn drive<S: Stepper>(s: &mut S, horizon: Micros, max_steps: u64) -> (u64, Option<Violation>) {
    let mut steps = 0;
    while let Some((at, ev)) = s.next_event() {
        if at > horizon {
            break;
        }
        if steps >= max_steps {
            let bound = Violation {
                code: "model.step_bound".into(),
                at: secs(at),
                channel: None,
                message: format!("more than {max_steps} steps: livelock in the model"),
                count: 1,
            };
            return (steps, Some(bound));
        }
        steps += 1;
        s.step(at, ev);
    }
    (steps, None)
}

/// The names of a table's timers, in the order they fire at equal times.
pub trait TimerName: Copy + 'static {
    const ALL: &'static [Self];
    /// This timer's position in [`TimerName::ALL`].
    fn index(self) -> usize;
}

/// One deadline per named timer. Setting a timer replaces its deadline,
/// so a timer that was moved or stopped can never fire late.
pub struct Timers<T: TimerName> {
    at: Vec<Option<Micros>>,
    _names: std::marker::PhantomData<T>,
}

impl<T: TimerName> Default for Timers<T> {
    fn default() -> Self {
        Timers {
            at: vec![None; T::ALL.len()],
            _names: std::marker::PhantomData,
        }
    }
}

impl<T: TimerName> Timers<T> {
    pub fn set(&mut self, timer: T, at: Micros) {
        self.at[timer.index()] = Some(at);
    }
    pub fn stop(&mut self, timer: T) {
        self.at[timer.index()] = None;
    }
    pub fn stop_all(&mut self) {
        self.at.fill(None);
    }
    pub fn get(&self, timer: T) -> Option<Micros> {
        self.at[timer.index()]
    }
    /// The earliest timer and its deadline (ties in [`TimerName::ALL`]
    /// order), left set: the model's `poll_timeout`.
    pub fn earliest(&self) -> Option<(Micros, T)> {
        T::ALL
            .iter()
            .filter_map(|&t| self.get(t).map(|at| (at, t)))
            .min_by_key(|&(at, t)| (at, t.index()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum T {
        Ping,
        Deadline,
    }

    impl TimerName for T {
        const ALL: &'static [T] = &[T::Ping, T::Deadline];
        fn index(self) -> usize {
            self as usize
        }
    }

    #[test]
    fn equal_times_leave_the_queue_in_insertion_order() {
        let mut q = EventQueue::new();
        q.push(Micros(5), "b");
        q.push(Micros(1), "a");
        q.push(Micros(5), "c");
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(
            order,
            vec![(Micros(1), "a"), (Micros(5), "b"), (Micros(5), "c")]
        );
    }

    #[test]
    fn a_moved_timer_fires_once_at_its_new_deadline() {
        let mut t = Timers::<T>::default();
        t.set(T::Deadline, Micros(10));
        t.set(T::Ping, Micros(30));
        t.set(T::Deadline, Micros(40));
        assert_eq!(t.earliest(), Some((Micros(30), T::Ping)));
        t.stop(T::Ping);
        assert_eq!(t.earliest(), Some((Micros(40), T::Deadline)));
        assert_eq!(t.get(T::Ping), None);
        t.stop_all();
        assert_eq!(t.earliest(), None);
    }

    #[test]
    fn timers_due_together_fire_in_their_declared_order() {
        let mut t = Timers::<T>::default();
        t.set(T::Deadline, Micros(7));
        t.set(T::Ping, Micros(7));
        assert_eq!(t.earliest(), Some((Micros(7), T::Ping)));
        t.stop(T::Ping);
        assert_eq!(t.earliest(), Some((Micros(7), T::Deadline)));
    }

    struct Counter {
        q: EventQueue<u64>,
        seen: Vec<u64>,
    }

    impl Stepper for Counter {
        type Ev = u64;
        fn next_event(&mut self) -> Option<(Micros, u64)> {
            self.q.pop()
        }
        fn step(&mut self, now: Micros, ev: u64) {
            self.seen.push(ev);
            // Each event schedules the next: without the bound, it never ends.
            self.q.push(Micros(now.0 + 1), ev + 1);
        }
    }

    #[test]
    fn the_loop_stops_at_the_horizon_and_at_the_step_bound() {
        let mut c = Counter {
            q: EventQueue::new(),
            seen: Vec::new(),
        };
        c.q.push(Micros(0), 0);
        assert_eq!(drive(&mut c, Micros(9), MAX_STEPS), (10, None));
        assert_eq!(c.seen, (0..10).collect::<Vec<_>>());

        let mut c = Counter {
            q: EventQueue::new(),
            seen: Vec::new(),
        };
        c.q.push(Micros(0), 0);
        let (steps, bound) = drive(&mut c, Micros(u64::MAX), 100);
        assert_eq!(steps, 100);
        assert_eq!(bound.map(|v| v.code), Some("model.step_bound".to_string()));
    }
}
