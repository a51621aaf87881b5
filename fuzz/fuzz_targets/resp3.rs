//! A state store request over MQTT (a client's payload): any bytes parse into a command or are
//! refused with one of AIO's reasons, in time linear in the input; a parsed command's key and
//! value are slices of the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_state::mqtt::resp3::{Command, Reply};

fuzz_target!(|payload: &[u8]| {
    match Command::parse(payload) {
        Ok(command) => {
            let key = command.key();
            assert!(key.len() <= payload.len());
            let answer = Reply::Value(key).encode();
            assert!(answer.ends_with(b"\r\n"));
        }
        Err(refused) => assert!(!refused.to_string().is_empty()),
    }
});
