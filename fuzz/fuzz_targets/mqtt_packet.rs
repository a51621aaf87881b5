//! The connection layer's MQTT decoder: any bytes give packets, "need more" or an error, for
//! MQTT 3.1.1 and 5, never a panic; the CONNECT sniffer never reads out of bounds.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use weir_door::codec::{opening, Codec, Version};

fuzz_target!(|data: &[u8]| {
    let _ = opening(data);
    for version in [Version::V3_1_1, Version::V5] {
        let mut codec = Codec::new(version, 1 << 16);
        let _ = codec.decode_connect(&mut BytesMut::from(data));
        let mut buf = BytesMut::from(data);
        for _ in 0..256 {
            match codec.decode(&mut buf) {
                Ok(Some(_)) => continue,
                _ => break,
            }
        }
    }
});
