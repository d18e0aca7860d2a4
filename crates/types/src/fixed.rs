//! Fixed-size byte newtypes that print as `0x` hex and parse with or without `0x`.

use alloc::string::String;
use core::fmt;

use crate::ParseError;

/// Decode `s` (with or without `0x`) into exactly `N` bytes.
pub(crate) fn parse_hex<const N: usize>(
    s: &str,
    what: &'static str,
) -> Result<[u8; N], ParseError> {
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s);
    if !digits.len().is_multiple_of(2) {
        return Err(ParseError::InvalidHex);
    }
    if digits.len() != N * 2 {
        return Err(ParseError::WrongLength { what, expected: N, got: digits.len() / 2 });
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(digits, &mut out).map_err(|_| ParseError::InvalidHex)?;
    Ok(out)
}

pub(crate) fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    let mut buf = [0u8; 64];
    f.write_str("0x")?;
    for chunk in bytes.chunks(32) {
        let out = buf.get_mut(..chunk.len() * 2).ok_or(fmt::Error)?;
        hex::encode_to_slice(chunk, out).map_err(|_| fmt::Error)?;
        f.write_str(core::str::from_utf8(out).map_err(|_| fmt::Error)?)?;
    }
    Ok(())
}

/// A serde visitor shared by every fixed-byte type: a hex string in human-readable formats,
/// raw bytes in binary ones.
pub(crate) struct FixedVisitor<const N: usize> {
    pub(crate) what: &'static str,
}

impl<'de, const N: usize> serde::de::Visitor<'de> for FixedVisitor<N> {
    type Value = [u8; N];

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} as a {N}-byte hex string or byte array", self.what)
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        parse_hex::<N>(v, self.what).map_err(E::custom)
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
        self.visit_str(&v)
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        <[u8; N]>::try_from(v).map_err(|_| {
            E::custom(ParseError::WrongLength { what: self.what, expected: N, got: v.len() })
        })
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = [0u8; N];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = seq.next_element()?.ok_or_else(|| {
                serde::de::Error::custom(ParseError::WrongLength {
                    what: self.what,
                    expected: N,
                    got: i,
                })
            })?;
        }
        if seq.next_element::<u8>()?.is_some() {
            return Err(serde::de::Error::custom(ParseError::WrongLength {
                what: self.what,
                expected: N,
                got: N + 1,
            }));
        }
        Ok(out)
    }
}

/// Defines a fixed-size byte newtype with constructors, conversions, serde and
/// (unless the `@common` arm is used and the caller writes its own, as addresses do) lower-case
/// hex `Display` and `FromStr`.
macro_rules! fixed_bytes {
    ($(#[$meta:meta])* $name:ident, $len:expr, $what:literal) => {
        fixed_bytes!(@common $(#[$meta])* $name, $len, $what);

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                $crate::fixed::write_hex(f, &self.0)
            }
        }

        impl core::str::FromStr for $name {
            type Err = $crate::ParseError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $crate::fixed::parse_hex::<$len>(s, $what).map(Self)
            }
        }
    };
    (@common $(#[$meta:meta])* $name:ident, $len:expr, $what:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// The length in bytes.
            pub const LEN: usize = $len;
            /// All zero bytes.
            pub const ZERO: Self = Self([0u8; $len]);

            /// Wraps the given bytes.
            #[must_use]
            pub const fn new(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }

            /// Copies a slice that must be exactly the right length.
            pub fn from_slice(bytes: &[u8]) -> Result<Self, $crate::ParseError> {
                <[u8; $len]>::try_from(bytes).map(Self).map_err(|_| $crate::ParseError::WrongLength {
                    what: $what,
                    expected: $len,
                    got: bytes.len(),
                })
            }

            /// The bytes.
            #[must_use]
            pub const fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// Whether every byte is zero.
            #[must_use]
            pub fn is_zero(&self) -> bool {
                self.0 == [0u8; $len]
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl From<[u8; $len]> for $name {
            fn from(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }
        }

        impl From<$name> for [u8; $len] {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl core::fmt::LowerHex for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                if f.alternate() {
                    f.write_str("0x")?;
                }
                for b in &self.0 {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                if serializer.is_human_readable() {
                    serializer.collect_str(self)
                } else {
                    serializer.serialize_bytes(&self.0)
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let visitor = $crate::fixed::FixedVisitor::<$len> { what: $what };
                if deserializer.is_human_readable() {
                    deserializer.deserialize_str(visitor).map(Self)
                } else {
                    deserializer.deserialize_bytes(visitor).map(Self)
                }
            }
        }
    };
}

pub(crate) use fixed_bytes;
