use crate::protocol::errors::{ErrorCode, WireError};
use crate::protocol::*;
use proptest::prelude::*;

fn request_strategy() -> impl Strategy<Value = Request> {
    prop_oneof![
        ".{0,80}".prop_map(|token| Request::Auth { token }),
        Just(Request::Ping {}),
        Just(Request::SessionRefresh {}),
        Just(Request::SessionSignOut {}),
        Just(Request::Me {}),
    ]
}

fn code_of(encoding: Encoding, payload: &[u8]) -> (Option<RequestId>, ErrorCode) {
    let err = decode_request(encoding, payload).expect_err("must not decode");
    (err.id, err.error.code())
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_request(Encoding::Json, &bytes);
        let _ = decode_request(Encoding::MsgPack, &bytes);
    }

    #[test]
    fn every_request_round_trips_in_both_encodings(id in 0u64..=MAX_REQUEST_ID, request in request_strategy()) {
        let frame = RequestFrame { id, request };
        for encoding in [Encoding::Json, Encoding::MsgPack] {
            let bytes = encode_request(encoding, &frame).unwrap();
            prop_assert_eq!(&decode_request(encoding, &bytes).unwrap(), &frame);
        }
    }

    #[test]
    fn arbitrary_json_values_get_an_error_or_a_request(value in arbitrary_json()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        let _ = decode_request(Encoding::Json, &bytes);
        let packed = to_msgpack(&value).unwrap();
        let _ = decode_request(Encoding::MsgPack, &packed);
    }
}

fn arbitrary_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(Into::into),
        any::<i64>().prop_map(Into::into),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Into::into),
        prop_oneof![Just("auth".to_owned()), Just("type".to_owned()), Just("id".to_owned()), ".{0,10}"]
            .prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(
                prop_oneof![Just("id".to_owned()), Just("type".to_owned()), Just("token".to_owned()), "[a-z]{1,5}"],
                inner,
                0..4
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn bad_frames_get_specific_codes_and_echo_the_id_when_readable() {
    use Encoding::Json;
    assert_eq!(code_of(Json, b"not json"), (None, ErrorCode::BadRequest));
    assert_eq!(code_of(Json, b"[1,2]"), (None, ErrorCode::BadRequest));
    assert_eq!(code_of(Json, br#"{"type":"ping"}"#), (None, ErrorCode::BadRequest));
    assert_eq!(code_of(Json, br#"{"id":"7","type":"ping"}"#), (None, ErrorCode::BadRequest));
    assert_eq!(code_of(Json, br#"{"id":7}"#), (Some(7), ErrorCode::BadRequest));
    assert_eq!(code_of(Json, br#"{"id":7,"type":"launch.rockets"}"#), (Some(7), ErrorCode::UnknownType));
    assert_eq!(code_of(Json, br#"{"id":8,"type":"auth"}"#), (Some(8), ErrorCode::BadRequest));
    assert_eq!(code_of(Json, br#"{"id":9,"type":"auth","token":5}"#), (Some(9), ErrorCode::BadRequest));
    let msg = decode_request(Json, br#"{"id":8,"type":"auth"}"#).unwrap_err().error.to_string();
    assert!(msg.contains("token"), "the message names the missing field: {msg}");
}

#[test]
fn trailing_bytes_and_huge_ids_are_refused() {
    let mut packed = to_msgpack(&serde_json::json!({"id": 1, "type": "ping"})).unwrap();
    packed.push(0xc0);
    assert_eq!(code_of(Encoding::MsgPack, &packed).1, ErrorCode::BadRequest);
    assert_eq!(code_of(Encoding::Json, br#"{"id":1,"type":"ping"} x"#).1, ErrorCode::BadRequest);
    assert_eq!(code_of(Encoding::Json, br#"{"id":9007199254740992,"type":"ping"}"#), (None, ErrorCode::BadRequest));
    assert!(decode_request(Encoding::Json, br#"{"id":9007199254740991,"type":"ping"}"#).is_ok());
}

#[test]
fn unknown_fields_are_ignored_for_forward_compatibility() {
    let frame = decode_request(Encoding::Json, br#"{"id":1,"type":"ping","future":true}"#).unwrap();
    assert_eq!(frame.request, Request::Ping {});
}

#[test]
fn messagepack_frames_decode_like_json() {
    let value = serde_json::json!({"id": 3, "type": "auth", "token": "abc"});
    let packed = to_msgpack(&value).unwrap();
    let frame = decode_request(Encoding::MsgPack, &packed).unwrap();
    assert_eq!(frame, RequestFrame { id: 3, request: Request::Auth { token: "abc".into() } });
    // JSON bytes decoded as MessagePack are garbage, not a panic. (The session picks the decoder by
    // frame type: text frames are JSON and binary frames MessagePack, whatever was negotiated.)
    assert_eq!(code_of(Encoding::MsgPack, br#"{"id":1,"type":"ping"}"#).1, ErrorCode::BadRequest);
}

#[test]
fn server_frames_encode_flat_with_type_and_id() {
    let err =
        ServerFrame::error(Some(4), &crate::Error::RateLimited { retry_after: std::time::Duration::from_millis(1500) });
    let Encoded::Text(text) = encode(Encoding::Json, &err).unwrap() else { panic!("json is text") };
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        value,
        serde_json::json!({"type": "error", "id": 4, "code": "rate_limited", "message": "too many requests", "retry_after_ms": 1500})
    );
    let Encoded::Binary(bytes) = encode(Encoding::MsgPack, &err).unwrap() else { panic!("msgpack is binary") };
    let from_pack: serde_json::Value = from_msgpack(&bytes).unwrap();
    assert_eq!(from_pack, value);
}

#[test]
fn negotiation_takes_the_first_known_protocol() {
    assert_eq!(Encoding::negotiate(["x", MSGPACK_PROTOCOL, JSON_PROTOCOL]), Some(Encoding::MsgPack));
    assert_eq!(Encoding::negotiate([JSON_PROTOCOL]), Some(Encoding::Json));
    assert_eq!(Encoding::negotiate(["graphql-ws"]), None);
}

proptest! {
    /// The `bin` check walks every marker the hub's own encoder writes without a false alarm.
    #[test]
    fn values_without_bin_pass_the_bin_check(value in arbitrary_json()) {
        prop_assert!(!holds_bin(&to_msgpack(&value).unwrap()));
    }
}

#[test]
fn messagepack_bin_is_refused_in_any_field_and_the_id_is_echoed() {
    // {"id": 4, "type": <bin "ping">}
    let bin_type = [&[0x82, 0xa2, b'i', b'd', 0x04, 0xa4, b't', b'y', b'p', b'e', 0xc4, 4][..], b"ping"].concat();
    assert_eq!(code_of(Encoding::MsgPack, &bin_type), (Some(4), ErrorCode::BadRequest));
    // {"id": 5, "type": "auth", "token": <bin>}, the bin nested after a map16 and a str8
    let mut bin_token = vec![0xde, 0, 3, 0xa2, b'i', b'd', 0x05, 0xa4, b't', b'y', b'p', b'e', 0xd9, 4];
    bin_token.extend_from_slice(b"auth");
    bin_token.extend_from_slice(&[0xa5, b't', b'o', b'k', b'e', b'n', 0xc5, 0, 3, b'a', b'b', b'c']);
    assert_eq!(code_of(Encoding::MsgPack, &bin_token), (Some(5), ErrorCode::BadRequest));
    let msg = decode_request(Encoding::MsgPack, &bin_token).unwrap_err().error.to_string();
    assert!(msg.contains("bin"), "the message says why: {msg}");
    // In an array, after an ext value and a float.
    let mut nested = vec![0x83, 0xa2, b'i', b'd', 0x06, 0xa4, b't', b'y', b'p', b'e', 0xa4];
    nested.extend_from_slice(b"ping");
    nested.extend_from_slice(&[0xa1, b'x', 0x93, 0xd4, 1, 2, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0, 0xc4, 0]);
    assert_eq!(code_of(Encoding::MsgPack, &nested), (Some(6), ErrorCode::BadRequest));
    // With nil for the bin, nothing is found.
    nested.truncate(nested.len() - 2);
    nested.push(0xc0);
    assert!(!holds_bin(&nested));
}
