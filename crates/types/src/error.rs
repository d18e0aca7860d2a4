use core::fmt;

/// Why a hex string could not be parsed into an identifier, hash or address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// A character outside `0-9a-fA-F` (after an optional `0x`), or an odd number of digits.
    InvalidHex,
    /// The value decoded to the wrong number of bytes.
    WrongLength {
        /// What was being parsed, e.g. `"task id"`.
        what: &'static str,
        /// The number of bytes this type holds.
        expected: usize,
        /// The number of bytes given.
        got: usize,
    },
    /// A mixed-case address whose letters do not match its EIP-55 checksum.
    BadChecksum,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidHex => f.write_str(
                "not a hex string: expected an even number of hex digits, with or without 0x",
            ),
            Self::WrongLength { what, expected, got } => write!(
                f,
                "a {what} is {expected} bytes ({} hex digits), but {got} bytes were given",
                expected * 2
            ),
            Self::BadChecksum => f.write_str(
                "the address's upper/lower case does not match its EIP-55 checksum; \
                 check for a typo, or give it in all lower case",
            ),
        }
    }
}

impl core::error::Error for ParseError {}

/// Why a length-prefixed encoding could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended before a field was complete.
    Truncated {
        /// Bytes the next field needs.
        needed: u64,
        /// Bytes left in the input.
        remaining: usize,
    },
    /// A fixed-width field (an integer, a hash, an address) had another length.
    WrongWidth {
        /// The width the field must have.
        expected: usize,
        /// The width its length prefix gave.
        got: u64,
    },
    /// A list claims more elements than its remaining bytes could hold, or more than allowed.
    ListTooLong {
        /// The length the list claims.
        len: u64,
        /// The most this decoder accepts here.
        max: u64,
    },
    /// Input remained after the last expected field.
    TrailingBytes(usize),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { needed, remaining } => write!(
                f,
                "encoding truncated: the next field needs {needed} bytes but only {remaining} remain"
            ),
            Self::WrongWidth { expected, got } => {
                write!(f, "a fixed-width field must be {expected} bytes, its prefix says {got}")
            }
            Self::ListTooLong { len, max } => {
                write!(f, "a list claims {len} elements, at most {max} can be present here")
            }
            Self::TrailingBytes(n) => write!(f, "{n} unexpected bytes after the last field"),
        }
    }
}

impl core::error::Error for DecodeError {}
