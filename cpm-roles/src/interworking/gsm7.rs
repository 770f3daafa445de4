//! The GSM 7-bit default alphabet and its extension table (3GPP TS 23.038,
//! formerly GSM 03.38, s.6.2.1 and s.6.2.1.1), and septet packing
//! (3GPP TS 23.038 s.6.1.2.1.1, 3GPP TS 23.040 s.9.2.3.24).

/// The escape to the extension table (3GPP TS 23.038 s.6.2.1.1).
pub const ESCAPE: u8 = 0x1B;

/// 3GPP TS 23.038 s.6.2.1 "GSM 7 bit Default Alphabet", by septet value.
/// Septet 0x1B is the escape, not a character (its slot is never matched).
const DEFAULT: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1B}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// 3GPP TS 23.038 s.6.2.1.1 "GSM 7 bit default alphabet extension table":
/// the characters reached by `ESC` + septet.
const EXTENSION: [(u8, char); 10] = [
    (0x0A, '\u{0C}'), // FORM FEED (page break)
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x65, '€'),
];

/// The septets of one character: one from the default alphabet, or the
/// escape and one from the extension table; `None` when neither has it.
#[must_use]
pub fn encode_char(c: char) -> Option<([u8; 2], usize)> {
    if c != '\u{1B}' {
        if let Some(septet) = DEFAULT.iter().position(|&d| d == c) {
            // The table has 128 entries: the position fits a septet.
            return Some(([u8::try_from(septet).unwrap_or(0), 0], 1));
        }
    }
    EXTENSION.iter().find(|&&(_, e)| e == c).map(|&(septet, _)| ([ESCAPE, septet], 2))
}

/// The unpacked septets of `text` (one per octet, escapes included), or
/// `None` when a character is in neither table.
#[must_use]
pub fn encode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        let (septets, n) = encode_char(c)?;
        out.extend_from_slice(septets.get(..n)?);
    }
    Some(out)
}

/// The text of unpacked septets. An unknown escape shows as the default
/// character of its septet (3GPP TS 23.038 s.6.2.1.1: "the receiving entity
/// shall display the character in the main GSM 7 bit default alphabet
/// table"); a lone escape at the end is dropped.
#[must_use]
pub fn decode(septets: &[u8]) -> String {
    let main = |s: u8| DEFAULT.get(usize::from(s & 0x7F)).copied().unwrap_or(' ');
    let mut out = String::with_capacity(septets.len());
    let mut it = septets.iter().copied();
    while let Some(s) = it.next() {
        if s & 0x7F == ESCAPE {
            if let Some(next) = it.next() {
                let next = next & 0x7F;
                out.push(EXTENSION.iter().find(|&&(e, _)| e == next).map_or_else(|| main(next), |&(_, c)| c));
            }
        } else {
            out.push(main(s));
        }
    }
    out
}

/// Packs septets into octets, least significant bit first, after
/// `fill_bits` zero bits (3GPP TS 23.038 s.6.1.2.1.1; 3GPP TS 23.040
/// s.9.2.3.24: after a UDH of `n` octets the text starts on the next septet
/// boundary, so `fill_bits = (7 - (8 * n) % 7) % 7`). Only the low 7 bits of
/// each septet count; `fill_bits` above 6 counts as 6.
#[must_use]
pub fn pack(septets: &[u8], fill_bits: u8) -> Vec<u8> {
    let fill = usize::from(fill_bits.min(6));
    let bits = fill + 7 * septets.len();
    let mut out = vec![0u8; bits.div_ceil(8)];
    for (i, &s) in septets.iter().enumerate() {
        let at = fill + 7 * i;
        let shift = at % 8;
        let value = u16::from(s & 0x7F) << shift;
        let [low, high] = value.to_le_bytes();
        if let Some(o) = out.get_mut(at / 8) {
            *o |= low;
        }
        if let Some(o) = out.get_mut(at / 8 + 1) {
            *o |= high;
        }
    }
    out
}

/// Unpacks `count` septets from `octets` after `fill_bits` bits (the inverse
/// of [`pack`]); stops early when the octets run out.
#[must_use]
pub fn unpack(octets: &[u8], fill_bits: u8, count: usize) -> Vec<u8> {
    let fill = usize::from(fill_bits.min(6));
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let at = fill + 7 * i;
        let (Some(&low), high) = (octets.get(at / 8), octets.get(at / 8 + 1).copied()) else { break };
        if at % 8 > 1 && high.is_none() {
            break;
        }
        let value = u16::from_le_bytes([low, high.unwrap_or(0)]) >> (at % 8);
        out.push(u8::try_from(value & 0x7F).unwrap_or(0));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_round_trip() {
        for (septet, &c) in DEFAULT.iter().enumerate() {
            if septet == usize::from(ESCAPE) {
                assert_eq!(encode_char(c), None, "ESC is not a character");
                continue;
            }
            let (s, n) = encode_char(c).unwrap();
            assert_eq!((usize::from(s[0]), n), (septet, 1), "{c:?}");
        }
        let all: String = EXTENSION.iter().map(|&(_, c)| c).collect();
        assert_eq!(decode(&encode(&all).unwrap()), all);
    }

    #[test]
    fn pack_unpack() {
        for n in 0..20usize {
            let septets: Vec<u8> = (0..n).map(|i| u8::try_from(i * 37 % 128).unwrap()).collect();
            for fill in 0..7 {
                assert_eq!(unpack(&pack(&septets, fill), fill, n), septets, "n={n} fill={fill}");
            }
        }
    }
}
