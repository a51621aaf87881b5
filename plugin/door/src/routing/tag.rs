//! What the door tells itself about a publish on its way through the router.
//!
//! rumqttd's router delivers every message at the QoS of the subscription it matched, clears
//! the retain flag, does not say who published it, knows no time, and sends a client one copy
//! per matching subscription. The door needs all five (the delivered QoS is the lower of the
//! published and the granted one; retain-as-published and no-local subscriptions; a full queue
//! pushes back on the publishers that fill it; a message expires; a client whose subscriptions
//! overlap gets one copy), so it carries them beside the message as three words (the router's
//! `carried` property, added to it in `vendor/rumqttd`), set when the message enters the
//! router and read at the router's edge when it comes back. No client or graph sees them.

/// Who published a message, how, and with which flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    /// QoS the message was published with (0, 1 or 2).
    pub qos: u8,
    /// Whether it was published retained.
    pub retain: bool,
    /// The publishing connection (or internal publisher).
    pub publisher: u64,
    /// When the message expires (ms since the Unix epoch), from its message expiry interval.
    pub expires_at: Option<u64>,
    /// The message's number, unique in this process: the copies the router makes of it for
    /// overlapping subscriptions share it.
    pub sequence: u64,
}

/// The second word's layout: QoS in bits 0-1, retain in bit 2, "expires" in bit 3, the expiry
/// (ms since the Unix epoch, far beyond the year 10,000 in 60 bits) above them.
const RETAIN: u64 = 1 << 2;
const EXPIRES: u64 = 1 << 3;
const EXPIRY_SHIFT: u32 = 4;

impl Tag {
    /// The tag as the three words the router carries.
    ///
    /// ```
    /// use weir_door::tag::Tag;
    /// let tag = Tag {
    ///     qos: 1,
    ///     retain: true,
    ///     publisher: 42,
    ///     expires_at: Some(1_700_000_000_000),
    ///     sequence: 7,
    /// };
    /// assert_eq!(Tag::from_words(tag.to_words()), Some(tag));
    /// ```
    pub fn to_words(self) -> [u64; 3] {
        let mut flags = u64::from(self.qos.min(2));
        if self.retain {
            flags |= RETAIN;
        }
        if let Some(at) = self.expires_at {
            flags |= EXPIRES | (at.min(u64::MAX >> EXPIRY_SHIFT) << EXPIRY_SHIFT);
        }
        [self.publisher, flags, self.sequence]
    }

    /// The tag from the words the router carried; `None` when they are not a tag's.
    pub fn from_words([publisher, flags, sequence]: [u64; 3]) -> Option<Tag> {
        let qos = (flags & 0b11) as u8;
        if qos > 2 {
            return None;
        }
        Some(Tag {
            qos,
            retain: flags & RETAIN != 0,
            publisher,
            expires_at: (flags & EXPIRES != 0).then_some(flags >> EXPIRY_SHIFT),
            sequence,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_survives_the_words() {
        for tag in [
            Tag {
                qos: 0,
                retain: false,
                publisher: 0,
                expires_at: None,
                sequence: 0,
            },
            Tag {
                qos: 2,
                retain: false,
                publisher: u64::MAX,
                expires_at: Some(0),
                sequence: u64::MAX,
            },
            Tag {
                qos: 1,
                retain: true,
                publisher: 7,
                expires_at: Some(u64::MAX >> 4),
                sequence: 3,
            },
        ] {
            assert_eq!(Tag::from_words(tag.to_words()), Some(tag));
        }
    }

    #[test]
    fn words_that_are_not_a_tag_give_none() {
        assert_eq!(Tag::from_words([1, 3, 0]), None);
    }

    #[test]
    fn a_qos_above_two_is_carried_as_two() {
        let tag = Tag {
            qos: 9,
            retain: false,
            publisher: 1,
            expires_at: None,
            sequence: 0,
        };
        assert_eq!(Tag::from_words(tag.to_words()).map(|t| t.qos), Some(2));
    }
}
