//! How one key's entry is laid out in the database.
//!
//! `version | expires_at | fencing token | value`, where a timestamp is
//! `millis: u64 | counter: u64 | node-id length: u16 | node-id`, an optional field is a presence
//! byte followed by the field, and integers are little-endian.

use weir_model::hlc::Hlc;

/// A stored value with its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    pub value: Vec<u8>,
    pub version: Hlc,
    /// Milliseconds since the Unix epoch after which the value is gone.
    pub expires_at: Option<u64>,
    pub fencing_token: Option<Hlc>,
}

impl Entry {
    pub fn expired(&self, now_millis: u64) -> bool {
        self.expires_at.is_some_and(|at| at <= now_millis)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.value.len());
        put_hlc(&mut out, &self.version);
        match self.expires_at {
            Some(at) => {
                out.push(1);
                out.extend_from_slice(&at.to_le_bytes());
            }
            None => out.push(0),
        }
        match &self.fencing_token {
            Some(token) => {
                out.push(1);
                put_hlc(&mut out, token);
            }
            None => out.push(0),
        }
        out.extend_from_slice(&self.value);
        out
    }

    /// `None` for bytes this module did not write.
    pub fn decode(bytes: &[u8]) -> Option<Entry> {
        let mut reader = Reader(bytes);
        let version = reader.hlc()?;
        let expires_at = match reader.byte()? {
            0 => None,
            _ => Some(reader.u64()?),
        };
        let fencing_token = match reader.byte()? {
            0 => None,
            _ => Some(reader.hlc()?),
        };
        Some(Entry {
            value: reader.0.to_vec(),
            version,
            expires_at,
            fencing_token,
        })
    }
}

pub(super) fn encode_hlc(hlc: &Hlc) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    put_hlc(&mut out, hlc);
    out
}

pub(super) fn decode_hlc(bytes: &[u8]) -> Option<Hlc> {
    Reader(bytes).hlc()
}

fn put_hlc(out: &mut Vec<u8>, hlc: &Hlc) {
    out.extend_from_slice(&hlc.millis().to_le_bytes());
    out.extend_from_slice(&hlc.counter.to_le_bytes());
    let node = hlc.node_id.as_bytes();
    let len = node.len().min(u16::MAX as usize);
    out.extend_from_slice(&(len as u16).to_le_bytes());
    out.extend_from_slice(&node[..len]);
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
    }

    fn hlc(&mut self) -> Option<Hlc> {
        let millis = self.u64()?;
        let counter = self.u64()?;
        let len = self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))? as usize;
        let node = std::str::from_utf8(self.take(len)?).ok()?;
        Some(Hlc::from_millis(millis, counter, node.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let entry = Entry {
            value: b"value".to_vec(),
            version: Hlc::from_millis(1_700_000_000_001, 3, "gw".into()),
            expires_at: Some(42),
            fencing_token: Some(Hlc::from_millis(9, 1, "lock".into())),
        };
        assert_eq!(Entry::decode(&entry.encode()), Some(entry));
    }

    #[test]
    fn truncated_bytes_are_rejected() {
        let entry = Entry {
            value: Vec::new(),
            version: Hlc::from_millis(1, 0, "n".into()),
            expires_at: None,
            fencing_token: None,
        };
        let bytes = entry.encode();
        assert!(Entry::decode(&bytes[..bytes.len() - 2]).is_none());
    }
}
