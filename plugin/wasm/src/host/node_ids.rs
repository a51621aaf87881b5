//! The node ids of timestamps crossing into and out of a module, kept per instance so that
//! the usual case costs no allocation: the items of a stream carry the same node id, a module
//! hands back the timestamp it was given, and the WIT string carrying the id into the module
//! is lent for the call and taken back after it.

use std::sync::Arc;

/// The node id that crossed last, as the host holds it and as the text lent to the module.
#[derive(Debug, Default)]
pub(crate) struct NodeIds {
    /// The last node id handed in or taken out.
    last: Option<Arc<str>>,
    /// Its text, when not lent out.
    text: String,
}

impl NodeIds {
    /// `node_id` as the owned WIT string a module receives: the text kept from the last call
    /// when it is the same, else a new one. Give it back with [`NodeIds::give_back`].
    pub(crate) fn lend(&mut self, node_id: &Arc<str>) -> String {
        if self.text != **node_id {
            self.text.clear();
            self.text.push_str(node_id);
            self.last = Some(node_id.clone());
        }
        std::mem::take(&mut self.text)
    }

    /// Takes back a string [`NodeIds::lend`] lent, once the call is over.
    pub(crate) fn give_back(&mut self, text: String) {
        if self.text.capacity() < text.capacity() {
            self.text = text;
        }
    }

    /// The node id a module returned, as the host's `Arc<str>`: the one kept when the text is
    /// the same, else a new one (then kept).
    pub(crate) fn intern(&mut self, text: &str) -> Arc<str> {
        match &self.last {
            Some(last) if **last == *text => last.clone(),
            _ => {
                let node_id: Arc<str> = text.into();
                self.last = Some(node_id.clone());
                node_id
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::NodeIds;
    use std::sync::Arc;

    #[test]
    fn the_same_node_id_is_lent_and_interned_without_a_copy() {
        let mut ids = NodeIds::default();
        let gw1: Arc<str> = "gw1".into();
        let lent = ids.lend(&gw1);
        assert_eq!(lent, "gw1");
        let address = lent.as_ptr();
        ids.give_back(lent);
        let again = ids.lend(&gw1);
        assert_eq!(again.as_ptr(), address, "the kept text is lent again");
        ids.give_back(again);
        assert!(Arc::ptr_eq(&ids.intern("gw1"), &gw1));
    }

    #[test]
    fn another_node_id_replaces_the_kept_one() {
        let mut ids = NodeIds::default();
        let gw1: Arc<str> = "gw1".into();
        let lent = ids.lend(&gw1);
        ids.give_back(lent);
        let other = ids.intern("gw2");
        assert_eq!(&*other, "gw2");
        assert!(Arc::ptr_eq(&ids.intern("gw2"), &other));
        assert_eq!(ids.lend(&"gw3".into()), "gw3");
        // Not given back: the next lend makes its own text.
        assert_eq!(ids.lend(&"gw3".into()), "gw3");
    }
}
