//! Entry points of the SIP fuzz targets (feature `fuzzing`).

use bytes::Bytes;

use super::{parse_datagram, Framer, FramerEvent, Limits, Message, ParseError};

/// What a stream parses to.
fn stream(
    data: &[u8],
    split: &mut dyn Iterator<Item = usize>,
) -> (Vec<Result<FramerEvent, ParseError>>, Result<(), ParseError>) {
    let mut framer = Framer::new(Limits::default());
    let mut events = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let n = split.next().unwrap_or(rest.len()).clamp(1, rest.len());
        framer.handle_segment(Bytes::copy_from_slice(&rest[..n]));
        rest = &rest[n..];
        while let Some(event) = framer.poll_event() {
            events.push(event);
        }
    }
    (events, framer.finish())
}

/// Feeds `data` as a stream whole and in segments whose sizes come from the
/// first bytes, and as a datagram: never panics; every split gives the same
/// events; every accepted message encodes canonically and parses back to itself.
///
/// # Panics
/// When one of those properties does not hold.
pub fn sip_message(data: &[u8]) {
    let (sizes, input) = match data.split_first() {
        Some((&n, rest)) => (usize::from(n % 16) + 1, rest),
        None => (1, data),
    };
    let whole = stream(input, &mut std::iter::empty());
    let mut seed = u32::try_from(input.len()).unwrap_or(u32::MAX) | 1;
    let mut random = std::iter::from_fn(|| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        Some(seed as usize % (sizes * 8) + 1)
    });
    assert_eq!(stream(input, &mut random), whole, "random split differs");
    assert_eq!(stream(input, &mut std::iter::repeat(sizes)), whole, "split {sizes} differs");
    let datagram = parse_datagram(Bytes::copy_from_slice(input), &Limits::default());
    let accepted = whole.0.iter().filter_map(|e| match e {
        Ok(FramerEvent::Message(m)) => Some(m.clone()),
        _ => None,
    });
    for message in accepted.chain(datagram.ok()) {
        round_trip(&message);
    }
}

fn round_trip(message: &Message) {
    let encoded = message.encode();
    let again =
        Message::parse(encoded.clone()).unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&encoded)));
    // The canonical form states the body's real length in decimal (a
    // Content-Length of "075" is written "75"), and adds one if it was absent.
    let mut expected = message.to_builder();
    let length = Bytes::from(message.body().len().to_string());
    let mut had_length = false;
    for (name, value) in expected.headers_mut() {
        if crate::sip::HeaderName::from_bytes(name) == crate::sip::HeaderName::ContentLength {
            *value = length.clone();
            had_length = true;
        }
    }
    if !had_length {
        expected.header("Content-Length", &message.body().len().to_string());
    }
    assert_eq!(again.to_builder(), expected);
    assert_eq!(again.encode(), encoded, "canonical form is not stable");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_inputs_do_not_panic() {
        for data in [
            &b""[..],
            b"\x00",
            b"\x03\r\n\r\n",
            b"\x01INVITE sip:a@b SIP/2.0\r\n\r\n",
            b"\x05SIP/2.0 200 OK\r\nl: 99999999999999999999\r\n\r\n",
            b"\x07\n",
        ] {
            sip_message(data);
        }
    }
}
