//! Queue to remote: QoS 0 messages as they come, queued ones within the window (from memory,
//! or from disk after an outage), each with the packet id its sequence number gives it, and
//! each acknowledgement taking its message out of the queue (a QoS 2 message is marked on disk
//! as received before its PUBREL goes).

use super::super::window::{pkid_of, InFlight, Stage};
use super::{Outcome, Session, DISK_BATCH, OUT_HIGH};
use crate::bridge::queue::{QueueError, Queued, Removed, Stored, Taken};
use crate::message::properties_to_wire;
use crate::now_millis;
use bytestring::ByteString;
use rmqtt_codec::types::{Publish, QoS};
use std::num::NonZeroU16;
use std::time::Instant;

impl Session<'_> {
    /// Moves what waits into the socket's buffer: QoS 0 messages, then queued ones within the
    /// window.
    pub(super) fn fill(&mut self) {
        if self.out.len() < OUT_HIGH {
            self.link.volatile.take_all(&mut self.qos0);
            while self.out.len() < OUT_HIGH {
                let Some(message) = self.qos0.pop_front() else {
                    break;
                };
                self.send_qos0(message);
            }
        }
        while self.window.has_room() && self.out.len() < OUT_HIGH {
            if self.staged.is_empty() && !self.stage() {
                break;
            }
            let Some(next) = self.staged.front() else {
                break;
            };
            if next.seq < self.link.queue.first() {
                // Dropped from a full queue meanwhile.
                self.staged.pop_front();
                continue;
            }
            let qos = next.message.qos.min(self.max_qos);
            if !self.window.is_free(pkid_of(next.seq)) || !self.window.has_room_for(qos) {
                break;
            }
            let Some(stored) = self.staged.pop_front() else {
                break;
            };
            self.cursor = stored.seq + 1;
            self.send_stored(stored);
        }
        self.read_ahead();
    }

    /// Takes the next messages from the queue's memory, or starts reading them from disk;
    /// whether some were taken.
    pub(super) fn stage(&mut self) -> bool {
        if self.disk.is_some() {
            return !self.staged.is_empty();
        }
        let from = self.next_to_stage();
        let mut taken = Vec::new();
        match self.link.queue.take(from, DISK_BATCH, &mut taken) {
            Taken::Nothing => {}
            Taken::Some => self.staged.extend(taken),
            Taken::OnDisk => {
                let queue = self.link.queue.clone();
                self.disk = Some(tokio::task::spawn_blocking(move || {
                    queue.read_stored(from, DISK_BATCH)
                }));
            }
        }
        !self.staged.is_empty()
    }

    /// Message `seq` leaves the queue (with its mark, if `marked`): gathered, and handed to
    /// the writer once per turn of the session ([`Session::flush_removed`]).
    pub(super) fn leave(&mut self, seq: u64, size: u64, marked: bool) {
        self.removed.push(Removed { seq, size, marked });
    }

    /// Hands what left the queue this turn to the writer, in one operation.
    pub(super) fn flush_removed(&mut self) {
        if !self.removed.is_empty() {
            self.link.queue.remove(std::mem::take(&mut self.removed));
        }
    }

    /// The first message not yet staged.
    fn next_to_stage(&self) -> u64 {
        self.staged.back().map_or(self.cursor, |s| s.seq + 1)
    }

    /// Reads ahead (from memory, or from disk on a blocking thread) while half the staged
    /// messages are still to send, so that a link draining a backlog does not wait for each
    /// read.
    pub(super) fn read_ahead(&mut self) {
        if self.staged.len() < DISK_BATCH / 2 && self.disk.is_none() && !self.staged.is_empty() {
            self.stage();
        }
    }

    pub(super) fn read_from_disk(
        &mut self,
        read: Result<Vec<Stored>, QueueError>,
    ) -> Option<Outcome> {
        self.disk = None;
        match read {
            Ok(messages) => {
                let from = self.next_to_stage();
                self.staged
                    .extend(messages.into_iter().filter(|m| m.seq >= from));
                None
            }
            Err(e) => Some(Outcome::Lost(format!("the queue cannot be read: {e}"))),
        }
    }

    pub(super) fn send_qos0(&mut self, message: Queued) {
        let remaining = match remaining_expiry(&message) {
            Ok(remaining) => remaining,
            Err(()) => {
                self.link.metrics.count_expired();
                return;
            }
        };
        let publish = self.publish_of(&message, 0, None, false, remaining);
        match self.wire.publish(publish, &mut self.out) {
            Ok(()) => {
                self.link.metrics.count_sent(1);
                self.mark_sent(true);
            }
            Err(e) => self.refused_by_size(&message, &e.to_string()),
        }
    }

    /// Sends queued message `stored` (PUBREL for one the remote already received).
    pub(super) fn send_stored(&mut self, stored: Stored) {
        let (seq, pkid, size) = (stored.seq, pkid_of(stored.seq), stored.size);
        if self.link.queue.is_received(seq) {
            if self.session_present {
                self.wire.pubrel(pkid, &mut self.out);
                let entry = InFlight {
                    stored,
                    qos: 2,
                    stage: Stage::Released,
                };
                self.window.insert(pkid, entry);
            } else {
                // The remote delivered it before it lost the session.
                self.leave(seq, size, true);
                self.link.metrics.count_sent(1);
            }
            return;
        }
        let remaining = match remaining_expiry(&stored.message) {
            Ok(remaining) => remaining,
            Err(()) => {
                self.leave(seq, size, false);
                self.link.metrics.count_expired();
                return;
            }
        };
        let qos = stored.message.qos.min(self.max_qos);
        let dup = self.session_present && seq < self.dup_below && qos > 0;
        let id = (qos > 0).then_some(pkid);
        let publish = self.publish_of(&stored.message, qos, id, dup, remaining);
        if let Err(e) = self.wire.publish(publish, &mut self.out) {
            self.leave(seq, size, false);
            self.refused_by_size(&stored.message, &e.to_string());
            return;
        }
        self.sent_before = self.sent_before.max(seq + 1);
        self.mark_sent(true);
        if qos == 0 {
            self.leave(seq, size, false);
            self.link.metrics.count_sent(1);
        } else {
            let entry = InFlight {
                stored,
                qos,
                stage: Stage::Sent,
            };
            self.window.insert(pkid, entry);
        }
    }

    pub(super) fn publish_of(
        &self,
        message: &Queued,
        qos: u8,
        pkid: Option<u16>,
        dup: bool,
        remaining: Option<u32>,
    ) -> Publish {
        let properties = if self.link.config.protocol.is_v5() {
            properties_to_wire(message.properties.as_deref(), &[], remaining)
        } else {
            None
        };
        Publish {
            dup,
            retain: message.retain && self.retain_out,
            qos: match qos {
                0 => QoS::AtMostOnce,
                1 => QoS::AtLeastOnce,
                _ => QoS::ExactlyOnce,
            },
            topic: ByteString::try_from(message.topic.clone()).unwrap_or_default(),
            packet_id: pkid.and_then(NonZeroU16::new),
            payload: message.payload.clone(),
            properties,
        }
    }

    /// A message larger than the remote accepts: dropped and counted.
    pub(super) fn refused_by_size(&mut self, message: &Queued, why: &str) {
        self.link.metrics.count_dropped(1);
        self.log_refusal(message, why);
    }

    pub(super) fn log_refusal(&mut self, message: &Queued, why: &str) {
        self.refusals_logged += 1;
        if self.refusals_logged.is_power_of_two() {
            tracing::warn!(
                bridge = %self.link.config.name,
                topic = %String::from_utf8_lossy(&message.topic),
                "message not delivered to the remote, dropped: {why} ({} so far)",
                self.refusals_logged
            );
        }
    }

    pub(super) fn mark_sent(&mut self, activity: bool) {
        let now = Instant::now();
        self.last_sent = now;
        if activity {
            self.last_activity = now;
        }
    }

    /// The remote has message `pkid` (PUBACK or PUBCOMP; a reason of 0x80 or more: it refused
    /// it).
    pub(super) fn complete(&mut self, pkid: u16, reason: u8) {
        let Some(entry) = self.window.remove(pkid) else {
            return;
        };
        let (seq, size) = (entry.stored.seq, entry.stored.size);
        self.leave(seq, size, entry.stage != Stage::Sent);
        if reason >= 0x80 {
            self.link.metrics.count_dropped(1);
            let why = format!("the remote answered reason {reason:#04x}");
            self.log_refusal(&entry.stored.message.clone(), &why);
        } else {
            self.link.metrics.count_sent(1);
        }
    }

    /// PUBREC: the mark goes to disk first, then the PUBREL ([`Session::release`]).
    pub(super) fn received(&mut self, pkid: u16) {
        let Some(entry) = self.window.get_mut(pkid) else {
            return;
        };
        match entry.stage {
            Stage::Sent => {
                entry.stage = Stage::Marking;
                let seq = entry.stored.seq;
                self.link.queue.mark_received(seq, self.marked.0.clone());
            }
            Stage::Marking => {}
            Stage::Released => self.wire.pubrel(pkid, &mut self.out),
        }
    }

    /// The mark of message `seq` is on disk: PUBREL.
    pub(super) fn release(&mut self, seq: u64) {
        let pkid = pkid_of(seq);
        if let Some(entry) = self.window.get_mut(pkid) {
            if entry.stored.seq == seq && entry.stage == Stage::Marking {
                entry.stage = Stage::Released;
                self.wire.pubrel(pkid, &mut self.out);
            }
        }
    }
}

/// The message expiry interval `message` has left (`Err`: it has expired).
fn remaining_expiry(message: &Queued) -> Result<Option<u32>, ()> {
    let Some(at) = message.expires_at() else {
        return Ok(None);
    };
    let now = now_millis();
    if at <= now {
        return Err(());
    }
    Ok(Some(
        u32::try_from((at - now).div_ceil(1000)).unwrap_or(u32::MAX),
    ))
}
