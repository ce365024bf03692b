//! The trainer's waiting requests: first come, first trained, one per device — a newer request
//! for a device that is already waiting takes the older one's place in line and supersedes it.

use std::collections::{HashMap, VecDeque};
use wattcast_core::reading::DeviceId;
use wattcast_core::wire::RetrainRequest;

/// Requests received and not yet trained, each with its message `M` (to acknowledge once done).
#[derive(Debug)]
pub(super) struct RequestQueue<M> {
    line: VecDeque<Place<M>>,
    waiting: HashMap<DeviceId, (RetrainRequest, M)>,
}

#[derive(Debug)]
enum Place<M> {
    /// The device's request waiting in `waiting`.
    Device(DeviceId),
    /// A message that is no request, to be refused in its turn.
    Refused(M, String),
}

/// What comes next out of the queue.
#[derive(Debug, PartialEq)]
pub(super) enum Next<M> {
    /// A request to train on.
    Train(RetrainRequest, M),
    /// A message to refuse, and why.
    Refuse(M, String),
}

impl<M> Default for RequestQueue<M> {
    fn default() -> Self {
        Self {
            line: VecDeque::new(),
            waiting: HashMap::new(),
        }
    }
}

impl<M> RequestQueue<M> {
    /// Queues `request`; returns the message it supersedes (the device's request waiting until
    /// now, or `request`'s own if the waiting one reaches further), to be acknowledged untrained.
    pub fn push(&mut self, request: RetrainRequest, message: M) -> Option<M> {
        match self.waiting.get_mut(&request.device) {
            Some(waiting) if waiting.0.to > request.to => Some(message),
            Some(waiting) => Some(std::mem::replace(waiting, (request, message)).1),
            None => {
                self.line.push_back(Place::Device(request.device));
                self.waiting.insert(request.device, (request, message));
                None
            }
        }
    }

    /// Queues a message that is no request, refused when its turn comes.
    pub fn push_refused(&mut self, message: M, reason: String) {
        self.line.push_back(Place::Refused(message, reason));
    }

    /// The first in line.
    pub fn pop(&mut self) -> Option<Next<M>> {
        loop {
            match self.line.pop_front()? {
                Place::Refused(message, reason) => return Some(Next::Refuse(message, reason)),
                Place::Device(device) => {
                    if let Some((request, message)) = self.waiting.remove(&device) {
                        return Some(Next::Train(request, message));
                    }
                }
            }
        }
    }

    /// Requests and refusals waiting.
    pub fn len(&self) -> usize {
        self.line.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn request(device: u32, to: i64) -> RetrainRequest {
        RetrainRequest {
            device: DeviceId(device),
            from: to - 600,
            to,
        }
    }

    #[test]
    fn a_newer_request_takes_the_waiting_ones_place_and_supersedes_it() {
        let mut queue = RequestQueue::default();
        assert_eq!(queue.push(request(1, 1000), "1@1000"), None);
        assert_eq!(queue.push(request(2, 1000), "2@1000"), None);
        queue.push_refused("junk", "malformed".to_owned());
        assert_eq!(queue.push(request(1, 1600), "1@1600"), Some("1@1000"));
        // An older one than the waiting request (a redelivery) is the one superseded.
        assert_eq!(queue.push(request(1, 1300), "1@1300"), Some("1@1300"));
        assert_eq!(queue.len(), 3);
        assert_eq!(queue.pop(), Some(Next::Train(request(1, 1600), "1@1600")));
        assert_eq!(queue.pop(), Some(Next::Train(request(2, 1000), "2@1000")));
        assert_eq!(queue.pop(), Some(Next::Refuse("junk", "malformed".to_owned())));
        assert_eq!(queue.pop(), None);
        // Once trained, a device's next request waits again.
        assert_eq!(queue.push(request(1, 2200), "1@2200"), None);
        assert_eq!(queue.pop(), Some(Next::Train(request(1, 2200), "1@2200")));
    }

    proptest! {
        /// Every message comes out exactly once — trained, refused or superseded — and what is
        /// trained is each device's furthest-reaching request.
        #[test]
        fn every_message_is_trained_refused_or_superseded_once(
            pushes in proptest::collection::vec((0_u32..4, 0_i64..10, any::<bool>()), 0..40),
        ) {
            let mut queue = RequestQueue::default();
            let mut out = Vec::new();
            let mut trained = Vec::new();
            for (index, (device, to, malformed)) in pushes.iter().enumerate() {
                if *malformed {
                    queue.push_refused(index, String::new());
                } else {
                    out.extend(queue.push(request(*device, *to), index));
                }
            }
            while let Some(next) = queue.pop() {
                match next {
                    Next::Train(request, index) => {
                        trained.push(request);
                        out.push(index);
                    }
                    Next::Refuse(index, _) => out.push(index),
                }
            }
            out.sort_unstable();
            prop_assert_eq!(out, (0..pushes.len()).collect::<Vec<_>>());
            for request in &trained {
                let furthest = pushes
                    .iter()
                    .filter(|(device, _, malformed)| !malformed && DeviceId(*device) == request.device)
                    .map(|(_, to, _)| *to)
                    .max();
                prop_assert_eq!(Some(request.to), furthest);
            }
        }
    }
}
