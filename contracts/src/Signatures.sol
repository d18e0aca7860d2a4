// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// Recovers the signer of a 65-byte `r ‖ s ‖ v` signature over a raw 32-byte digest
/// (PROTOCOL.md section 1: no "\x19Ethereum Signed Message" prefix, `v` = 27 or 28).
library Signatures {
    /// secp256k1n / 2: a larger `s` is the malleable twin of a valid signature.
    uint256 private constant HALF_ORDER =
        0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    /// The signer, or the zero address when the signature is malformed, malleable or invalid.
    function recover(bytes32 digest, bytes calldata signature) internal pure returns (address) {
        if (signature.length != 65) return address(0);
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (uint256(s) > HALF_ORDER || (v != 27 && v != 28)) return address(0);
        return ecrecover(digest, v, r, s);
    }
}
