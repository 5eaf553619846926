//! `google.rpc.RetryInfo` read from a status's details.
//!
//! The details (`grpc-status-details-bin`) are a protobuf `google.rpc.Status`
//! whose field 3 holds `Any`s; a `RetryInfo` is the `Any` with
//! [`RETRY_INFO_TYPE_URL`] and holds a `google.protobuf.Duration`.
//!
//! # Why not `tonic_types::StatusExt::get_details_retry_info`
//!
//! It panics on garbage: converting a `Duration` of `i64::MIN` seconds
//! negates it (prost-types 0.14's `TryFrom<Duration>`), which overflows in
//! any build with overflow checks, debug builds included, and the details
//! come from the server. The walk below reads exactly the fields that call
//! reads, with prost's rules, so the two agree on every input it accepts
//! (a property test checks it), and costs no allocation: only the bytes of
//! one failed call's details are touched.
//!
//! ```text
//! Status     { 1: code varint, 2: message string, 3: details Any (repeated) }
//! Any        { 1: type_url string, 2: value bytes }
//! RetryInfo  { 1: retry_delay Duration }
//! Duration   { 1: seconds int64, 2: nanos int32 }
//! ```
//!
//! As prost does: a malformed `Status` (a truncated field, a known field of
//! the wrong wire type, a string that is not UTF-8) has no details at all;
//! a malformed `RetryInfo` is passed over for the next; unknown fields are
//! skipped, groups included; a field given twice takes the last value, an
//! embedded message given twice is merged.

use std::time::Duration;

/// The `Any` type URL of `google.rpc.RetryInfo`. Written out rather than
/// read from `tonic-types`, whose six crates (prost's derive among them)
/// would otherwise be built for this one string; a test checks it against
/// tonic-types'.
const RETRY_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// The delay of the first well-formed `RetryInfo` in `details`: `None`
/// without one, or when its delay is absent, zero or negative.
///
/// A zero or negative delay is not a hint (`tonic-types` reads a negative
/// one as zero): `RetryInfo` gives the least a client should wait, and a
/// hint replaces the backoff rather than adding to it, so honouring "at
/// least nothing" would retry at once.
pub(super) fn retry_delay(details: &[u8]) -> Option<Duration> {
    let (seconds, nanos) = first_retry_info(details).ok().flatten().flatten()?;
    let total = i128::from(seconds) * NANOS_PER_SECOND + i128::from(nanos);
    if total <= 0 {
        return None;
    }
    // At most (2^63 - 1) s + 2^31 ns: the seconds fit in a u64.
    let secs = u64::try_from(total / NANOS_PER_SECOND).ok()?;
    let nanos = u32::try_from(total % NANOS_PER_SECOND).ok()?;
    Some(Duration::new(secs, nanos))
}

const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// The input is not the protobuf message it should be.
#[derive(Debug)]
struct Malformed;

/// `Ok(None)`: a well-formed status without a `RetryInfo`; `Ok(Some(None))`:
/// with one whose delay is absent.
fn first_retry_info(details: &[u8]) -> Result<Option<Option<(i64, i32)>>, Malformed> {
    let mut found = None;
    let mut status = Reader::new(details);
    while let Some((tag, value)) = status.field()? {
        match (tag, value) {
            (1, Value::Varint(_)) => {}
            (2, Value::Bytes(message)) => utf8(message)?,
            (3, Value::Bytes(any)) => {
                let (type_url, value) = any_fields(any)?;
                if found.is_none() && type_url == RETRY_INFO_TYPE_URL.as_bytes() {
                    found = retry_info(value).ok();
                }
            }
            (1..=3, _) => return Err(Malformed),
            _ => {}
        }
    }
    Ok(found)
}

/// An `Any`'s type URL and value.
fn any_fields(any: &[u8]) -> Result<(&[u8], &[u8]), Malformed> {
    let (mut type_url, mut value): (&[u8], &[u8]) = (&[], &[]);
    let mut fields = Reader::new(any);
    while let Some((tag, field)) = fields.field()? {
        match (tag, field) {
            (1, Value::Bytes(url)) => {
                utf8(url)?;
                type_url = url;
            }
            (2, Value::Bytes(bytes)) => value = bytes,
            (1 | 2, _) => return Err(Malformed),
            _ => {}
        }
    }
    Ok((type_url, value))
}

/// A `RetryInfo`'s delay, as seconds and nanoseconds.
fn retry_info(message: &[u8]) -> Result<Option<(i64, i32)>, Malformed> {
    let mut delay = None;
    let mut fields = Reader::new(message);
    while let Some((tag, field)) = fields.field()? {
        match (tag, field) {
            (1, Value::Bytes(duration)) => {
                let (mut seconds, mut nanos) = delay.unwrap_or((0, 0));
                let mut fields = Reader::new(duration);
                while let Some((tag, field)) = fields.field()? {
                    // Wire integers are two's complement, truncated to the
                    // field's width, as prost reads them.
                    match (tag, field) {
                        (1, Value::Varint(v)) => seconds = v as i64,
                        (2, Value::Varint(v)) => nanos = v as i32,
                        (1 | 2, _) => return Err(Malformed),
                        _ => {}
                    }
                }
                delay = Some((seconds, nanos));
            }
            (1, _) => return Err(Malformed),
            _ => {}
        }
    }
    Ok(delay)
}

fn utf8(bytes: &[u8]) -> Result<(), Malformed> {
    std::str::from_utf8(bytes).map(drop).map_err(|_| Malformed)
}

/// A field's value; the fixed-width ones are only ever skipped.
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// Reads one message's fields in order.
struct Reader<'a> {
    rest: &'a [u8],
}

/// prost's limit on nested groups (and messages).
const RECURSION_LIMIT: u32 = 100;

impl<'a> Reader<'a> {
    fn new(message: &'a [u8]) -> Self {
        Reader { rest: message }
    }

    /// The next field's number and value, `None` at the end. Groups, a
    /// proto2 relic, are skipped whole.
    fn field(&mut self) -> Result<Option<(u32, Value<'a>)>, Malformed> {
        loop {
            if self.rest.is_empty() {
                return Ok(None);
            }
            let (tag, wire_type) = self.key()?;
            if wire_type == START_GROUP {
                self.skip_group(tag, 1)?;
                continue;
            }
            return self.value(wire_type).map(|value| Some((tag, value)));
        }
    }

    fn key(&mut self) -> Result<(u32, u64), Malformed> {
        let key = u32::try_from(self.varint()?).map_err(|_| Malformed)?;
        let (tag, wire_type) = (key >> 3, u64::from(key & 7));
        if tag == 0 || wire_type > 5 {
            return Err(Malformed);
        }
        Ok((tag, wire_type))
    }

    fn value(&mut self, wire_type: u64) -> Result<Value<'a>, Malformed> {
        match wire_type {
            VARINT => self.varint().map(Value::Varint),
            FIXED64 => self.take(8).map(|_| Value::Fixed),
            LENGTH_DELIMITED => {
                let len = usize::try_from(self.varint()?).map_err(|_| Malformed)?;
                self.take(len).map(Value::Bytes)
            }
            FIXED32 => self.take(4).map(|_| Value::Fixed),
            // An end of group that no group started.
            _ => Err(Malformed),
        }
    }

    /// Skips to the end of the group `tag` started.
    fn skip_group(&mut self, tag: u32, depth: u32) -> Result<(), Malformed> {
        if depth > RECURSION_LIMIT {
            return Err(Malformed);
        }
        loop {
            let (inner, wire_type) = self.key()?;
            match wire_type {
                END_GROUP if inner == tag => return Ok(()),
                END_GROUP => return Err(Malformed),
                START_GROUP => self.skip_group(inner, depth + 1)?,
                _ => {
                    self.value(wire_type)?;
                }
            }
        }
    }

    /// A base-128 varint of at most ten bytes, the tenth at most 1.
    fn varint(&mut self) -> Result<u64, Malformed> {
        let mut value = 0u64;
        for (i, &byte) in self.rest.iter().take(10).enumerate() {
            if i == 9 && byte > 1 {
                return Err(Malformed);
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                self.rest = &self.rest[i + 1..];
                return Ok(value);
            }
        }
        Err(Malformed)
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], Malformed> {
        if len > self.rest.len() {
            return Err(Malformed);
        }
        let (taken, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(taken)
    }
}

const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LENGTH_DELIMITED: u64 = 2;
const START_GROUP: u64 = 3;
const END_GROUP: u64 = 4;
const FIXED32: u64 = 5;

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use tonic::{Code, Status};
    use tonic_types::{ErrorDetails, StatusExt};

    #[test]
    fn the_type_url_is_tonic_types() {
        assert_eq!(RETRY_INFO_TYPE_URL, tonic_types::RetryInfo::TYPE_URL);
    }

    /// Protobuf encoding, for details `tonic-types` cannot build.
    pub(in super::super) mod wire {
        pub(crate) fn varint(mut v: u64, out: &mut Vec<u8>) {
            while v >= 0x80 {
                out.push((v as u8) | 0x80);
                v >>= 7;
            }
            out.push(v as u8);
        }

        pub(crate) fn bytes(tag: u32, value: &[u8], out: &mut Vec<u8>) {
            varint(u64::from(tag << 3 | 2), out);
            varint(value.len() as u64, out);
            out.extend_from_slice(value);
        }

        pub(crate) fn int(tag: u32, value: u64, out: &mut Vec<u8>) {
            varint(u64::from(tag << 3), out);
            varint(value, out);
        }

        /// A `google.rpc.Status` with a `RetryInfo` of this delay.
        pub(crate) fn status_with_delay(seconds: i64, nanos: i32) -> Vec<u8> {
            let mut duration = Vec::new();
            int(1, seconds as u64, &mut duration);
            int(2, nanos as i64 as u64, &mut duration);
            let mut info = Vec::new();
            bytes(1, &duration, &mut info);
            status_with_any(tonic_types::RetryInfo::TYPE_URL, &info)
        }

        pub(crate) fn status_with_any(type_url: &str, value: &[u8]) -> Vec<u8> {
            let mut any = Vec::new();
            bytes(1, type_url.as_bytes(), &mut any);
            bytes(2, value, &mut any);
            let mut status = Vec::new();
            int(1, 14, &mut status);
            bytes(2, b"busy", &mut status);
            bytes(3, &any, &mut status);
            status
        }
    }

    /// What `tonic-types` reads, with this module's reading of a zero
    /// delay; `Err` when it panics.
    fn reference(details: &[u8]) -> Result<Option<Duration>, ()> {
        let status = Status::with_details(Code::Unavailable, "busy", details.to_vec().into());
        catch_unwind(AssertUnwindSafe(|| status.get_details_retry_info()))
            .map(|info| {
                info.and_then(|info| info.retry_delay)
                    .filter(|d| !d.is_zero())
            })
            .map_err(drop)
    }

    fn details_of(info: ErrorDetails) -> Vec<u8> {
        Status::with_error_details(Code::Unavailable, "busy", info)
            .details()
            .to_vec()
    }

    #[test]
    fn reads_the_delay_tonic_types_writes() {
        let details = details_of(ErrorDetails::with_retry_info(Some(Duration::from_millis(
            1500,
        ))));
        assert_eq!(retry_delay(&details), Some(Duration::from_millis(1500)));
    }

    #[test]
    fn no_details_no_retry_info_no_delay() {
        assert_eq!(retry_delay(&[]), None);
        let other = details_of(ErrorDetails::with_bad_request_violation("name", "empty"));
        assert_eq!(retry_delay(&other), None);
        let empty = details_of(ErrorDetails::with_retry_info(None));
        assert_eq!(retry_delay(&empty), None);
    }

    #[test]
    fn zero_and_negative_delays_are_no_hint() {
        assert_eq!(retry_delay(&wire::status_with_delay(0, 0)), None);
        assert_eq!(retry_delay(&wire::status_with_delay(-5, 0)), None);
        assert_eq!(
            retry_delay(&wire::status_with_delay(1, -1_000_000_000)),
            None
        );
    }

    #[test]
    fn unnormalized_delays_are_summed() {
        let delay = retry_delay(&wire::status_with_delay(2, -500_000_000));
        assert_eq!(delay, Some(Duration::from_millis(1500)));
        let delay = retry_delay(&wire::status_with_delay(-1, 2_000_000_000));
        assert_eq!(delay, Some(Duration::from_secs(1)));
    }

    #[test]
    fn the_delays_that_panic_in_tonic_types_are_read_safely() {
        assert_eq!(retry_delay(&wire::status_with_delay(i64::MIN, 0)), None);
        assert_eq!(
            retry_delay(&wire::status_with_delay(i64::MIN, i32::MIN)),
            None
        );
        let huge = retry_delay(&wire::status_with_delay(i64::MAX, i32::MAX));
        assert!(huge.is_some_and(|d| d.as_secs() == i64::MAX as u64 + 2));
    }

    #[test]
    fn a_malformed_retry_info_gives_way_to_the_next() {
        let mut bad = Vec::new();
        wire::int(1, 5, &mut bad); // a Duration where a message belongs
        let mut seconds_twice = Vec::new();
        wire::int(1, 9, &mut seconds_twice);
        wire::bytes(1, b"9", &mut seconds_twice); // then as bytes
        let mut bad_duration = Vec::new();
        wire::bytes(1, &seconds_twice, &mut bad_duration);
        let mut good = Vec::new();
        let mut duration = Vec::new();
        wire::int(1, 3, &mut duration);
        wire::bytes(1, &duration, &mut good);
        let mut status = Vec::new();
        for info in [&bad, &bad_duration, &good] {
            let mut any = Vec::new();
            wire::bytes(1, RETRY_INFO_TYPE_URL.as_bytes(), &mut any);
            wire::bytes(2, info, &mut any);
            wire::bytes(3, &any, &mut status);
        }
        assert_eq!(retry_delay(&status), Some(Duration::from_secs(3)));
        assert_eq!(reference(&status), Ok(Some(Duration::from_secs(3))));
    }

    #[test]
    fn groups_and_unknown_fields_are_skipped() {
        let mut status = wire::status_with_delay(4, 0);
        // field 9 as a group holding a varint and a nested group, then
        // fixed-width fields 10 and 11.
        status.extend([9 << 3 | 3, 1 << 3, 7, 2 << 3 | 3, 2 << 3 | 4, 9 << 3 | 4]);
        status.extend([10 << 3 | 1, 0, 0, 0, 0, 0, 0, 0, 0, 11 << 3 | 5, 0, 0, 0, 0]);
        assert_eq!(retry_delay(&status), Some(Duration::from_secs(4)));
        assert_eq!(reference(&status), Ok(Some(Duration::from_secs(4))));
    }

    #[test]
    fn a_malformed_status_has_no_details() {
        let mut status = wire::status_with_delay(4, 0);
        wire::bytes(2, &[0xff], &mut status); // a message that is not UTF-8
        assert_eq!(retry_delay(&status), None);
        assert_eq!(reference(&status), Ok(None));
        // A known field of the wrong wire type: the message as a varint.
        let mut status = wire::status_with_delay(4, 0);
        wire::int(2, 7, &mut status);
        assert_eq!(retry_delay(&status), None);
        assert_eq!(reference(&status), Ok(None));
        // So is an `Any` whose type URL comes again as a varint, though
        // the `RetryInfo` before it reads well.
        let mut duration = Vec::new();
        wire::int(1, 4, &mut duration);
        let mut info = Vec::new();
        wire::bytes(1, &duration, &mut info);
        let mut any = Vec::new();
        wire::bytes(1, RETRY_INFO_TYPE_URL.as_bytes(), &mut any);
        wire::bytes(2, &info, &mut any);
        wire::int(1, 5, &mut any);
        let mut status = Vec::new();
        wire::bytes(3, &any, &mut status);
        assert_eq!(retry_delay(&status), None);
        assert_eq!(reference(&status), Ok(None));
        let whole = wire::status_with_delay(4, 0);
        for cut in 0..whole.len() {
            assert_eq!(
                retry_delay(&whole[..cut]),
                reference(&whole[..cut]).unwrap()
            );
        }
    }

    /// The keys and groups prost refuses make the status malformed here
    /// too: a field numbered 0, a group ended by another field's end, and
    /// groups nested past prost's recursion limit (100 deep is read).
    #[test]
    fn keys_and_groups_prost_refuses_make_the_status_malformed() {
        let with = |tail: &[u8]| {
            let mut status = wire::status_with_delay(4, 0);
            status.extend_from_slice(tail);
            let delay = retry_delay(&status);
            assert_eq!(Ok(delay), reference(&status), "{tail:?}");
            delay
        };
        assert_eq!(with(&[0, 5]), None, "field 0");
        assert_eq!(with(&[9 << 3 | 3, 8 << 3 | 4]), None, "ended by field 8");
        assert_eq!(
            with(&[9 << 3 | 3, 9 << 3 | 4]),
            Some(Duration::from_secs(4))
        );
        let nested = |depth: usize| [vec![9 << 3 | 3; depth], vec![9 << 3 | 4; depth]].concat();
        assert_eq!(with(&nested(100)), Some(Duration::from_secs(4)));
        assert_eq!(with(&nested(101)), None, "101 deep");
    }

    /// A varint takes at most ten bytes, the tenth carrying one bit: a
    /// tenth byte of 0 is read (written long, as some encoders do), one
    /// above 1 overflows and makes the status malformed, as in prost.
    #[test]
    fn a_ten_byte_varint_is_read_to_its_last_bit() {
        let with_seconds = |varint: &[u8]| {
            let mut duration = vec![1 << 3];
            duration.extend_from_slice(varint);
            let mut info = Vec::new();
            wire::bytes(1, &duration, &mut info);
            let status = wire::status_with_any(RETRY_INFO_TYPE_URL, &info);
            let delay = retry_delay(&status);
            assert_eq!(Ok(delay), reference(&status), "{varint:?}");
            delay
        };
        let long_three = [0x83, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00];
        assert_eq!(with_seconds(&long_three), Some(Duration::from_secs(3)));
        let overflowing = [0x83, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02];
        assert_eq!(with_seconds(&overflowing), None);
    }

    proptest! {
        #[test]
        fn agrees_with_tonic_types_on_any_delay(
            seconds in -1_000_000_000_000i64..1_000_000_000_000,
            nanos in any::<i32>(),
        ) {
            let details = wire::status_with_delay(seconds, nanos);
            prop_assert_eq!(Ok(retry_delay(&details)), reference(&details));
        }

        #[test]
        fn agrees_with_tonic_types_on_mangled_details(
            delay in 0u64..10_000_000,
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let mut info = ErrorDetails::with_retry_info(Some(Duration::from_micros(delay)));
            info.add_bad_request_violation("name", "empty")
                .set_debug_info(vec!["frame".into()], "detail");
            let mut details = details_of(info);
            for (at, byte) in flips {
                let at = at.index(details.len());
                details[at] = byte;
            }
            if let Ok(expected) = reference(&details) {
                prop_assert_eq!(retry_delay(&details), expected);
            }
        }

        #[test]
        fn never_panics_on_garbage(details in proptest::collection::vec(any::<u8>(), 0..64)) {
            let delay = retry_delay(&details);
            if let Ok(expected) = reference(&details) {
                prop_assert_eq!(delay, expected);
            }
        }
    }
}
