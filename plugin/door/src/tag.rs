//! What the door tells itself about a publish on its way through the router.
//!
//! rumqttd's router delivers every message at the QoS of the subscription it matched, clears
//! the retain flag, does not say who published it, and knows no time. The door needs all four
//! (the delivered QoS is the lower of the published and the granted one; retain-as-published
//! and no-local subscriptions; a full queue pushes back on the publishers that fill it; a
//! message expires), so it carries them in a user property of its own, added when the message
//! enters the router and taken out before any client or graph sees it. Its key is a
//! NUL character, which a client cannot send (MQTT strings exclude U+0000), so it can never be
//! confused with a client's property.

use crate::message::Properties;

/// The reserved user property's key.
pub const TAG_KEY: &str = "\0";

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
}

impl Tag {
    /// Adds the tag to `properties` (creating them if needed).
    ///
    /// ```
    /// use weir_door::tag::Tag;
    /// let tag = Tag { qos: 1, retain: true, publisher: 42, expires_at: Some(1_700_000_000_000) };
    /// let mut properties = None;
    /// tag.attach(&mut properties);
    /// assert_eq!(Tag::detach(&mut properties), Some(tag));
    /// assert!(properties.unwrap().user_properties.is_empty());
    /// ```
    pub fn attach(self, properties: &mut Option<Properties>) {
        let mut value = format!(
            "{}{}{:x}",
            self.qos.min(2),
            if self.retain { 'r' } else { '-' },
            self.publisher
        );
        if let Some(at) = self.expires_at {
            value.push_str(&format!(";{at:x}"));
        }
        properties
            .get_or_insert_with(Properties::default)
            .user_properties
            .push((TAG_KEY.to_string(), value));
    }

    /// Takes the tag out of `properties`. `None` when there is none or it is unreadable (the
    /// property is removed either way).
    pub fn detach(properties: &mut Option<Properties>) -> Option<Tag> {
        let user = &mut properties.as_mut()?.user_properties;
        // The door appends it last.
        let index = user.iter().rposition(|(key, _)| key == TAG_KEY)?;
        let (_, value) = user.remove(index);
        Tag::parse(&value)
    }

    fn parse(value: &str) -> Option<Tag> {
        let (value, expires_at) = match value.split_once(';') {
            Some((value, at)) => (value, Some(u64::from_str_radix(at, 16).ok()?)),
            None => (value, None),
        };
        let mut chars = value.chars();
        let qos = chars.next()?.to_digit(10).filter(|q| *q <= 2)? as u8;
        let retain = match chars.next()? {
            'r' => true,
            '-' => false,
            _ => return None,
        };
        let publisher = u64::from_str_radix(chars.as_str(), 16).ok()?;
        Some(Tag {
            qos,
            retain,
            publisher,
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_leaves_the_other_properties_in_their_order() {
        let mut properties = Some(Properties {
            user_properties: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
            content_type: Some("text/plain".into()),
            ..Default::default()
        });
        let tag = Tag {
            qos: 2,
            retain: false,
            publisher: u64::MAX,
            expires_at: None,
        };
        tag.attach(&mut properties);
        assert_eq!(Tag::detach(&mut properties), Some(tag));
        let properties = properties.unwrap();
        assert_eq!(
            properties.user_properties,
            vec![("a".to_string(), "1".to_string()), ("a".into(), "2".into())]
        );
        assert_eq!(properties.content_type.as_deref(), Some("text/plain"));
    }

    #[test]
    fn a_message_without_a_tag_has_none() {
        let mut properties = Some(Properties::default());
        assert_eq!(Tag::detach(&mut properties), None);
        assert_eq!(Tag::detach(&mut None), None);
        let mut broken = Some(Properties {
            user_properties: vec![(TAG_KEY.into(), "9x".into())],
            ..Default::default()
        });
        assert_eq!(Tag::detach(&mut broken), None);
        assert!(broken.unwrap().user_properties.is_empty());
    }
}
