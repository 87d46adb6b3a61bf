//! The scheduling queue, as kube-scheduler's: pods wait in one of three
//! places. `active` is ordered by priority (higher first) and then by
//! arrival; a pod that failed waits out an exponential backoff (1 s
//! doubling to 10 s) in `backoff`; a pod no node could take waits in
//! `unschedulable` until the cluster changes (a node added or changed, a
//! pod removed), or five minutes pass.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::framework::PodInfo;

pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Pods left unschedulable this long are retried even without an event.
pub const MAX_UNSCHEDULABLE: Duration = Duration::from_secs(300);

/// A pod popped for a scheduling attempt.
#[derive(Clone, Debug)]
pub struct QueuedPod {
    pub info: Arc<PodInfo>,
    /// Attempts so far, including this one.
    pub attempts: u32,
    /// When the pod first entered the queue.
    pub since: Instant,
}

#[derive(Debug, PartialEq)]
enum Place {
    Active,
    Backoff(Instant),
    Unschedulable(Instant),
    /// Popped, being scheduled or bound.
    InFlight {
        updated: bool,
    },
}

#[derive(Debug)]
struct Entry {
    info: Arc<PodInfo>,
    attempts: u32,
    since: Instant,
    last_attempt: Option<Instant>,
    place: Place,
    /// Bumped whenever the pod re-enters `active`, so stale heap entries
    /// are recognised and skipped.
    seq: u64,
}

/// Heap key: higher priority first, then earlier arrival.
#[derive(Debug, PartialEq, Eq)]
struct ActiveKey {
    priority: i32,
    since: Instant,
    seq: u64,
    uid: String,
}

impl Ord for ActiveKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority
            .cmp(&other.priority)
            .then_with(|| other.since.cmp(&self.since))
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for ActiveKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Default)]
pub struct SchedulingQueue {
    pods: HashMap<String, Entry>,
    active: BinaryHeap<ActiveKey>,
    backoff: BinaryHeap<Reverse<(Instant, u64, String)>>,
    seq: u64,
    /// Bumped by every cluster event that may make pods schedulable; a pod
    /// that fails after such an event during its attempt is retried after
    /// its backoff instead of parking as unschedulable.
    move_cycle: u64,
    /// `move_cycle` when each in-flight pod was popped.
    popped_at_cycle: HashMap<String, u64>,
}

fn backoff_for(attempts: u32) -> Duration {
    let shift = attempts.saturating_sub(1).min(16);
    (INITIAL_BACKOFF * (1u32 << shift)).min(MAX_BACKOFF)
}

impl SchedulingQueue {
    fn push_active(&mut self, uid: &str) {
        self.seq += 1;
        let seq = self.seq;
        if let Some(e) = self.pods.get_mut(uid) {
            e.place = Place::Active;
            e.seq = seq;
            self.active.push(ActiveKey {
                priority: e.info.priority,
                since: e.since,
                seq,
                uid: uid.to_string(),
            });
        }
    }

    fn push_backoff_or_active(&mut self, uid: &str, now: Instant) {
        let Some(e) = self.pods.get_mut(uid) else {
            return;
        };
        let until = e.last_attempt.map(|t| t + backoff_for(e.attempts));
        match until {
            Some(until) if until > now => {
                self.seq += 1;
                e.seq = self.seq;
                e.place = Place::Backoff(until);
                self.backoff
                    .push(Reverse((until, self.seq, uid.to_string())));
            }
            _ => self.push_active(uid),
        }
    }

    /// A new unscheduled pod, or a new version of one already queued.
    /// A changed pod that was parked as unschedulable is retried (after
    /// its backoff), since the change may be what it needed.
    pub fn add_or_update(&mut self, info: Arc<PodInfo>, now: Instant) {
        let uid = info.uid.clone();
        match self.pods.get_mut(&uid) {
            None => {
                self.pods.insert(
                    uid.clone(),
                    Entry {
                        info,
                        attempts: 0,
                        since: now,
                        last_attempt: None,
                        place: Place::Active,
                        seq: 0,
                    },
                );
                self.push_active(&uid);
            }
            Some(e) => {
                let spec_or_labels_changed = e.info.pod.spec != info.pod.spec
                    || e.info.pod.metadata.labels != info.pod.metadata.labels;
                e.info = info;
                match &mut e.place {
                    Place::InFlight { updated } => *updated |= spec_or_labels_changed,
                    Place::Unschedulable(_) if spec_or_labels_changed => {
                        self.push_backoff_or_active(&uid, now)
                    }
                    _ => {}
                }
            }
        }
    }

    pub fn delete(&mut self, uid: &str) {
        self.pods.remove(uid);
        self.popped_at_cycle.remove(uid);
    }

    /// Keeps only the pods for which `keep(uid)` holds (after a relist).
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.pods.retain(|uid, _| keep(uid));
        self.popped_at_cycle.retain(|uid, _| keep(uid));
    }

    /// Moves pods whose backoff is over to `active`.
    fn flush_backoff(&mut self, now: Instant) {
        while let Some(Reverse((until, seq, uid))) = self.backoff.peek().cloned() {
            if until > now {
                break;
            }
            self.backoff.pop();
            if self
                .pods
                .get(&uid)
                .is_some_and(|e| e.seq == seq && e.place == Place::Backoff(until))
            {
                self.push_active(&uid);
            }
        }
    }

    /// The next pod to schedule, if any is ready now.
    pub fn pop(&mut self, now: Instant) -> Option<QueuedPod> {
        self.flush_backoff(now);
        while let Some(key) = self.active.pop() {
            let Some(e) = self.pods.get_mut(&key.uid) else {
                continue;
            };
            if e.seq != key.seq || e.place != Place::Active {
                continue;
            }
            e.attempts += 1;
            e.last_attempt = Some(now);
            e.place = Place::InFlight { updated: false };
            self.popped_at_cycle
                .insert(key.uid.clone(), self.move_cycle);
            return Some(QueuedPod {
                info: e.info.clone(),
                attempts: e.attempts,
                since: e.since,
            });
        }
        None
    }

    /// When the earliest backoff ends (for the loop's sleep).
    pub fn next_backoff(&self) -> Option<Instant> {
        self.backoff.peek().map(|Reverse((t, _, _))| *t)
    }

    /// The attempt succeeded (the pod is assumed and binding): it leaves the queue.
    pub fn done(&mut self, uid: &str) {
        self.delete(uid);
    }

    /// The attempt failed because no node fits. The pod parks as
    /// unschedulable, unless the cluster changed (or the pod itself did)
    /// while it was being scheduled: then it is retried after its backoff.
    pub fn unschedulable(&mut self, uid: &str, now: Instant) {
        let popped = self.popped_at_cycle.remove(uid).unwrap_or(0);
        let moved = self.move_cycle > popped;
        let Some(e) = self.pods.get_mut(uid) else {
            return;
        };
        let updated = matches!(e.place, Place::InFlight { updated: true });
        if moved || updated {
            self.push_backoff_or_active(uid, now);
        } else {
            e.place = Place::Unschedulable(now);
        }
    }

    /// The attempt failed for another reason (an API error while binding):
    /// retry after the backoff. `info` re-adds a pod that already left the queue.
    pub fn backoff(&mut self, info: Arc<PodInfo>, attempts: u32, now: Instant) {
        let uid = info.uid.clone();
        self.popped_at_cycle.remove(&uid);
        let e = self.pods.entry(uid.clone()).or_insert_with(|| Entry {
            info,
            attempts,
            since: now,
            last_attempt: Some(now),
            place: Place::Active,
            seq: 0,
        });
        e.attempts = e.attempts.max(attempts);
        e.last_attempt = Some(now);
        self.push_backoff_or_active(&uid, now);
    }

    /// A cluster event that may make waiting pods schedulable: every
    /// unschedulable pod moves to backoff (or active if its backoff is over).
    pub fn move_all_to_active_or_backoff(&mut self, now: Instant) {
        self.move_cycle += 1;
        let parked: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, e)| matches!(e.place, Place::Unschedulable(_)))
            .map(|(k, _)| k.clone())
            .collect();
        for uid in parked {
            self.push_backoff_or_active(&uid, now);
        }
    }

    /// Retries pods parked longer than `MAX_UNSCHEDULABLE`.
    pub fn flush_unschedulable_leftover(&mut self, now: Instant) {
        let stale: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, e)| matches!(e.place, Place::Unschedulable(t) if now.duration_since(t) >= MAX_UNSCHEDULABLE))
            .map(|(k, _)| k.clone())
            .collect();
        for uid in stale {
            self.push_backoff_or_active(&uid, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    fn info(name: &str, priority: i32) -> Arc<PodInfo> {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "default", "uid": name},
            "spec": {"priority": priority, "containers": [{"name": "c", "image": "x"}]}
        }))
        .unwrap();
        Arc::new(PodInfo::new(Arc::new(pod)))
    }

    #[test]
    fn priority_then_arrival() {
        let mut q = SchedulingQueue::default();
        let t = Instant::now();
        q.add_or_update(info("low", 0), t);
        q.add_or_update(info("high", 100), t + Duration::from_millis(1));
        q.add_or_update(info("low2", 0), t + Duration::from_millis(2));
        let order: Vec<String> =
            std::iter::from_fn(|| q.pop(t).map(|p| p.info.name.clone())).collect();
        assert_eq!(order, ["high", "low", "low2"]);
    }

    #[test]
    fn unschedulable_waits_for_an_event_then_backs_off() {
        let mut q = SchedulingQueue::default();
        let t = Instant::now();
        q.add_or_update(info("p", 0), t);
        let p = q.pop(t).unwrap();
        assert_eq!(p.attempts, 1);
        q.unschedulable("p", t);
        assert!(
            q.pop(t + Duration::from_secs(60)).is_none(),
            "parked until an event"
        );
        q.move_all_to_active_or_backoff(t + Duration::from_millis(100));
        assert!(
            q.pop(t + Duration::from_millis(500)).is_none(),
            "still backing off (1 s)"
        );
        let p = q.pop(t + Duration::from_secs(1)).unwrap();
        assert_eq!(p.attempts, 2);
        // The second failure backs off 2 s.
        q.backoff(p.info.clone(), p.attempts, t + Duration::from_secs(1));
        assert!(q.pop(t + Duration::from_millis(2500)).is_none());
        assert!(q.pop(t + Duration::from_secs(3)).is_some());
    }

    #[test]
    fn event_during_attempt_means_retry() {
        let mut q = SchedulingQueue::default();
        let t = Instant::now();
        q.add_or_update(info("p", 0), t);
        q.pop(t).unwrap();
        q.move_all_to_active_or_backoff(t);
        q.unschedulable("p", t);
        assert!(
            q.pop(t + Duration::from_secs(1)).is_some(),
            "not parked: the cluster changed meanwhile"
        );
    }

    #[test]
    fn leftover_unschedulable_pods_are_retried() {
        let mut q = SchedulingQueue::default();
        let t = Instant::now();
        q.add_or_update(info("p", 0), t);
        q.pop(t).unwrap();
        q.unschedulable("p", t);
        q.flush_unschedulable_leftover(t + Duration::from_secs(10));
        assert!(q.pop(t + Duration::from_secs(10)).is_none());
        q.flush_unschedulable_leftover(t + MAX_UNSCHEDULABLE);
        assert!(q.pop(t + MAX_UNSCHEDULABLE).is_some());
    }
}
