//! Arbitrary bytes into the request decoder, read as JSON and as MessagePack. It must never panic,
//! and whatever it accepts must re-encode, in either encoding, to bytes that decode to the same
//! request: the two encodings carry the same values.

#![no_main]

use anapars_hub::protocol::{decode_request, encode_request, Encoding};
use libfuzzer_sys::fuzz_target;

const ENCODINGS: [Encoding; 2] = [Encoding::Json, Encoding::MsgPack];

fuzz_target!(|data: &[u8]| {
    for from in ENCODINGS {
        let Ok(frame) = decode_request(from, data) else { continue };
        for to in ENCODINGS {
            let bytes = encode_request(to, &frame).expect("a decoded request re-encodes");
            let again = decode_request(to, &bytes)
                .unwrap_or_else(|e| panic!("{frame:?} re-encoded as {to:?} does not decode: {}", e.error));
            assert_eq!(again, frame, "{from:?} -> {to:?} changed the request");
        }
    }
});
