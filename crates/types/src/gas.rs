//! Contract gas ("ENG gas", not Ethereum gas) and amounts of ENG.

use core::fmt;

macro_rules! gas_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[derive(serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl From<u64> for $name {
            fn from(value: u64) -> Self {
                Self(value)
            }
        }
    };
}

gas_type!(
    /// The most gas a task may use; always read from the task record on chain.
    GasLimit
);
gas_type!(
    /// The gas a task used, at most its limit.
    GasUsed
);
gas_type!(
    /// The price of one unit of gas, in grains of ENG.
    GasPrice
);

/// An amount of ENG in grains (1 ENG = 10^8 grains).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Grains(pub u128);

impl Grains {
    /// Grains in one ENG.
    pub const PER_ENG: u128 = 100_000_000;

    /// `gas · price`; it cannot overflow (both factors are 64-bit).
    #[must_use]
    pub fn fee(gas: u64, price: GasPrice) -> Self {
        Self(u128::from(gas) * u128::from(price.0))
    }
}

impl fmt::Display for Grains {
    /// As ENG with up to 8 decimals, e.g. `1.5 ENG`, `0.00000001 ENG`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / Self::PER_ENG;
        let frac = self.0 % Self::PER_ENG;
        if frac == 0 {
            return write!(f, "{whole} ENG");
        }
        let mut digits = [0u8; 8];
        let mut rest = frac;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        let used = digits.iter().rposition(|&d| d != b'0').map_or(0, |i| i + 1);
        let text =
            core::str::from_utf8(digits.get(..used).unwrap_or(&[])).map_err(|_| fmt::Error)?;
        write!(f, "{whole}.{text} ENG")
    }
}

impl GasLimit {
    /// The escrowed fee of a task with this limit at `price`.
    #[must_use]
    pub fn fee(self, price: GasPrice) -> Grains {
        Grains::fee(self.0, price)
    }
}

impl GasUsed {
    /// What the worker is paid for this much gas at `price`.
    #[must_use]
    pub fn fee(self, price: GasPrice) -> Grains {
        Grains::fee(self.0, price)
    }
}

#[cfg(test)]
mod tests {
    use alloc::string::ToString;

    use super::*;

    #[test]
    fn fee_is_gas_times_price_without_overflow() {
        assert_eq!(GasLimit(1_000).fee(GasPrice(3)), Grains(3_000));
        assert_eq!(GasLimit(u64::MAX).fee(GasPrice(u64::MAX)), Grains(u128::from(u64::MAX).pow(2)));
    }

    #[test]
    fn grains_display_as_eng() {
        assert_eq!(Grains(150_000_000).to_string(), "1.5 ENG");
        assert_eq!(Grains(1).to_string(), "0.00000001 ENG");
        assert_eq!(Grains(2 * Grains::PER_ENG).to_string(), "2 ENG");
        assert_eq!(Grains(0).to_string(), "0 ENG");
    }
}
