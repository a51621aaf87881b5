//! Where results leave a graph. [`mqtt`]: published back into the broker's router.

pub mod mqtt;
pub mod topic_template;

pub use topic_template::TopicTemplate;
