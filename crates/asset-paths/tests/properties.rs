//! Property tests: the segment encoding is a reversible, injective map onto
//! safe path segments, and `asset_path` inherits those guarantees.

use std::borrow::Cow;

use asset_paths::{asset_path, decode_segment, encode_segment};
use proptest::collection::vec;
use proptest::prelude::*;

/// Strings full of the characters the encoding has to handle.
fn tricky() -> impl Strategy<Value = String> {
    "[a-z./\\\\%\\x00-\\x1f\\x7f\\x{85} é✓]{0,12}"
}

/// A tiny alphabet that makes near-collisions such as `"."` vs `"%2E"` likely.
fn colliding() -> impl Strategy<Value = String> {
    "[.%/\\\\2ECF5]{0,4}"
}

/// Any segment: tricky, near-colliding or fully arbitrary.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![tricky(), colliding(), any::<String>()]
}

/// Valid extensions, including the empty one.
fn extension() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just(""), Just(".pkl"), Just(".tar.gz"), Just(".%")]
}

/// An asset key and its partition keys.
type Input = (Vec<String>, Vec<String>);

/// Two inputs with equal key lengths and equal partition lengths.
fn same_shape_inputs() -> impl Strategy<Value = (Input, Input)> {
    (1..4usize, 0..3usize).prop_flat_map(|(keys, partitions)| {
        let input = || (vec(colliding(), keys), vec(colliding(), partitions));
        (input(), input())
    })
}

/// Fails unless `segment` is a single, non-hidden, non-traversing path segment.
fn assert_safe(segment: &str) -> Result<(), TestCaseError> {
    prop_assert!(!segment.is_empty(), "empty segment");
    prop_assert!(!segment.starts_with('.'), "{segment:?} starts with '.'");
    prop_assert!(
        !segment.chars().any(|c| c == '/' || c == '\\' || c.is_control()),
        "{segment:?} has a separator or control character"
    );
    Ok(())
}

proptest! {
    #[test]
    fn decode_reverses_encode(s in segment()) {
        prop_assert_eq!(decode_segment(&encode_segment(&s)), Ok(s));
    }

    #[test]
    fn encoded_segments_are_safe(s in segment()) {
        let encoded = encode_segment(&s);
        assert_safe(&encoded)?;
        prop_assert!(encoded != "." && encoded != "..");
    }

    #[test]
    fn safe_segments_encode_to_themselves(s in prop_oneof!["[a-z.:é✓ ]{1,8}", segment()]) {
        let safe = !s.is_empty()
            && !s.starts_with('.')
            && !s.chars().any(|c| matches!(c, '/' | '\\' | '%') || c.is_control());
        if safe {
            prop_assert!(matches!(encode_segment(&s), Cow::Borrowed(e) if e == s));
        }
    }

    #[test]
    fn encode_is_injective(a in segment(), b in segment()) {
        if a != b {
            prop_assert_ne!(encode_segment(&a), encode_segment(&b));
        }
    }

    #[test]
    fn decode_accepts_only_canonical_encodings(input in prop_oneof![colliding(), tricky(), any::<String>()]) {
        if let Ok(decoded) = decode_segment(&input) {
            prop_assert_eq!(encode_segment(&decoded), input);
        }
    }

    #[test]
    fn asset_path_segments_are_safe(
        key in vec(segment(), 1..4),
        partition in vec(segment(), 0..3),
        extension in extension(),
    ) {
        let path = asset_path(&key, &partition, extension).unwrap();
        let segments: Vec<&str> = path.split('/').collect();
        prop_assert_eq!(segments.len(), key.len() + partition.len());
        for segment in segments {
            assert_safe(segment)?;
            prop_assert!(segment != "." && segment != "..");
        }
    }

    #[test]
    fn asset_path_is_reversible(
        key in vec(segment(), 1..4),
        partition in vec(segment(), 0..3),
        extension in extension(),
    ) {
        let path = asset_path(&key, &partition, extension).unwrap();
        let stem = path.strip_suffix(extension).unwrap();
        let decoded: Vec<String> = stem.split('/').map(|s| decode_segment(s).unwrap()).collect();
        let original: Vec<String> = key.iter().chain(&partition).cloned().collect();
        prop_assert_eq!(decoded, original);
    }

    #[test]
    fn asset_path_is_injective(
        ((key_a, partition_a), (key_b, partition_b)) in same_shape_inputs(),
        extension in extension(),
    ) {
        let a = asset_path(&key_a, &partition_a, extension).unwrap();
        let b = asset_path(&key_b, &partition_b, extension).unwrap();
        if (&key_a, &partition_a) != (&key_b, &partition_b) {
            prop_assert_ne!(a, b);
        } else {
            prop_assert_eq!(a, b);
        }
    }
}
