// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {
    IAttestationVerifier,
    MalformedEvidence,
    WrongProductId,
    EnclaveNotAllowed,
    DebugEnclaveNotAllowed
} from "./IAttestationVerifier.sol";

/// Verifies Intel IAS (EPID) attestation reports on chain (PROTOCOL.md section 5).
///
/// Evidence is `abi.encode(bytes reportJson, bytes signature)`: the attestation verification
/// report exactly as IAS returned it (the bytes Intel signed) and the `X-IASReport-Signature`
/// (RSA PKCS#1 v1.5 over SHA-256, decoded from base64). The verifier
///   1. checks the RSA signature under Intel's report-signing key (modulus and exponent are
///      constructor configuration; the modexp precompile at 0x05 does the arithmetic),
///   2. reads `isvEnclaveQuoteStatus` and `isvEnclaveQuoteBody` from the report's top-level JSON
///      object with a string-aware scanner (a value can never be mistaken for a key),
///   3. decodes the quote body (base64, 432 bytes) and applies the policy: status allowed,
///      ISVPRODID = the product being registered, MRENCLAVE allowed for that product, MRSIGNER
///      equal to the configured one, ISVSVN at least the minimum, DEBUG only if allowed, and
///      report_data[0..20] equal to the signer address being registered.
///
/// The certificate chain (signing certificate -> Intel's root CA) is not checked on chain: the
/// signing key itself is the trust anchor, configured at deployment. The report timestamp is not
/// checked either (there is no trustworthy notion of "too old" on chain without a policy for it).
contract IasVerifier is IAttestationVerifier {
    /// Offsets inside the 432-byte quote (48-byte quote header + 384-byte report body).
    uint256 private constant QUOTE_LENGTH = 432;
    uint256 private constant QUOTE_BASE64_LENGTH = 576;
    uint256 private constant ATTRIBUTES_FLAGS = 96;
    uint256 private constant MR_ENCLAVE = 112;
    uint256 private constant MR_SIGNER = 176;
    uint256 private constant ISV_PROD_ID = 304;
    uint256 private constant ISV_SVN = 306;
    uint256 private constant REPORT_DATA = 368;
    /// SGX_FLAGS_DEBUG, bit 1 of the little-endian attribute flags.
    uint256 private constant FLAG_DEBUG = 0x02;

    /// Base64 decoding table for byte values 0x20..0x7f (all other bytes are invalid): the
    /// sextet of each character of the standard alphabet, 0x80 for anything else.
    uint256 private constant BASE64_20_3F =
        0x80808080808080808080803e8080803f3435363738393a3b3c3d808080808080;
    uint256 private constant BASE64_40_5F =
        0x80000102030405060708090a0b0c0d0e0f101112131415161718198080808080;
    uint256 private constant BASE64_60_7F =
        0x801a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132338080808080;

    bytes32 private constant STATUS_KEY = keccak256("isvEnclaveQuoteStatus");
    bytes32 private constant BODY_KEY = keccak256("isvEnclaveQuoteBody");

    /// Intel's report-signing RSA key, big-endian.
    bytes public modulus;
    bytes public exponent;
    /// The MRSIGNER every enclave must have.
    bytes32 public immutable mrSigner;
    /// The lowest ISVSVN accepted.
    uint16 public immutable minIsvSvn;
    /// Whether enclaves with the DEBUG attribute may register.
    bool public immutable debugAllowed;
    /// productId => MRENCLAVE => allowed.
    mapping(uint16 => mapping(bytes32 => bool)) public isEnclaveAllowed;
    /// keccak256(quote status) => allowed.
    mapping(bytes32 => bool) private statusAllowed;

    /// The RSA signature does not verify over the report bytes under the configured key.
    error InvalidReportSignature();
    /// The report is not a JSON object this scanner can read; `offset` is where it gave up.
    error MalformedReport(uint256 offset);
    error MissingReportField(string name);
    error DuplicateReportField(string name);
    /// `isvEnclaveQuoteBody` is not 576 characters of base64 (a 432-byte quote).
    error InvalidQuoteBody();
    error QuoteStatusNotAllowed(string status);
    error WrongEnclaveSigner(bytes32 mrSigner);
    error SecurityVersionTooLow(uint16 isvSvn, uint16 minimum);
    /// The quote's report_data does not start with the signer address being registered.
    error ReportDataMismatch(address expected, address actual);
    error InvalidSigningKey();

    constructor(
        bytes memory modulus_,
        bytes memory exponent_,
        bytes32 mrSigner_,
        uint16 minIsvSvn_,
        bool debugAllowed_,
        string[] memory allowedStatuses,
        bytes32[] memory workerEnclaves,
        bytes32[] memory keyManagerEnclaves
    ) {
        // At least 1024 bits with a non-zero leading byte, so the PKCS#1 layout below fits and
        // the signature length is the modulus length.
        if (modulus_.length < 128 || modulus_[0] == 0 || exponent_.length == 0) {
            revert InvalidSigningKey();
        }
        modulus = modulus_;
        exponent = exponent_;
        mrSigner = mrSigner_;
        minIsvSvn = minIsvSvn_;
        debugAllowed = debugAllowed_;
        for (uint256 i; i < allowedStatuses.length; ++i) {
            statusAllowed[keccak256(bytes(allowedStatuses[i]))] = true;
        }
        for (uint256 i; i < workerEnclaves.length; ++i) {
            isEnclaveAllowed[1][workerEnclaves[i]] = true;
        }
        for (uint256 i; i < keyManagerEnclaves.length; ++i) {
            isEnclaveAllowed[2][keyManagerEnclaves[i]] = true;
        }
    }

    /// Whether a quote status (e.g. "OK", "GROUP_OUT_OF_DATE") is accepted.
    function isStatusAllowed(string calldata status) external view returns (bool) {
        return statusAllowed[keccak256(bytes(status))];
    }

    /// @inheritdoc IAttestationVerifier
    function verify(address signer, uint16 productId, bytes calldata evidence)
        external
        view
        returns (bytes32 mrEnclave, bytes32 binding)
    {
        bytes calldata report = _dynamicField(evidence, 0);
        bytes calldata signature = _dynamicField(evidence, 1);
        if (!_rsaVerify(sha256(report), signature)) revert InvalidReportSignature();

        (uint256 statusStart, uint256 statusEnd, uint256 bodyStart, uint256 bodyEnd) =
            _findFields(report);
        bytes calldata status = report[statusStart:statusEnd];
        if (!statusAllowed[keccak256(status)]) revert QuoteStatusNotAllowed(string(status));

        bytes memory quote = _decodeQuote(report[bodyStart:bodyEnd]);
        uint16 isvProdId = _u16le(quote, ISV_PROD_ID);
        uint16 isvSvn = _u16le(quote, ISV_SVN);
        bytes32 quoteMrSigner;
        address reportSigner;
        uint256 flags;
        assembly ("memory-safe") {
            let body := add(quote, 0x20)
            mrEnclave := mload(add(body, MR_ENCLAVE))
            quoteMrSigner := mload(add(body, MR_SIGNER))
            reportSigner := shr(96, mload(add(body, REPORT_DATA)))
            binding := mload(add(body, add(REPORT_DATA, 20)))
            flags := byte(0, mload(add(body, ATTRIBUTES_FLAGS)))
        }

        if (isvProdId != productId) revert WrongProductId(productId, isvProdId);
        if (!isEnclaveAllowed[isvProdId][mrEnclave]) revert EnclaveNotAllowed(isvProdId, mrEnclave);
        if (quoteMrSigner != mrSigner) revert WrongEnclaveSigner(quoteMrSigner);
        if (isvSvn < minIsvSvn) revert SecurityVersionTooLow(isvSvn, minIsvSvn);
        if (flags & FLAG_DEBUG != 0 && !debugAllowed) revert DebugEnclaveNotAllowed();
        if (reportSigner != signer) revert ReportDataMismatch(signer, reportSigner);
    }

    // ---------------------------------------------------------------------------------------
    // RSA

    /// PKCS#1 v1.5 verification by re-encoding: `sig^e mod n` must equal
    /// `0x00 0x01 0xff.. 0x00 DigestInfo(SHA-256) hash` byte for byte (RFC 8017 section 8.2.2),
    /// which leaves no room for the parsing flaws of decode-and-compare verifiers.
    function _rsaVerify(bytes32 hash, bytes calldata signature) private view returns (bool) {
        bytes memory n = modulus;
        uint256 k = n.length;
        if (signature.length != k) return false;
        bytes memory e = exponent;
        (bool ok, bytes memory decrypted) =
            address(0x05).staticcall(abi.encodePacked(k, e.length, k, signature, e, n));
        if (!ok || decrypted.length != k) return false;

        // 32 bytes of slack so the word-wise fill below stays inside the allocation.
        bytes memory expected = new bytes(k + 32);
        assembly ("memory-safe") {
            mstore(expected, k)
            let p := add(expected, 0x20)
            for { let i := 0 } lt(i, k) { i := add(i, 0x20) } { mstore(add(p, i), not(0)) }
            mstore8(p, 0x00)
            mstore8(add(p, 1), 0x01)
            // 12 bytes of padding, the 0x00 separator, then the 19-byte SHA-256 DigestInfo.
            mstore(
                add(p, sub(k, 64)),
                0xffffffffffffffffffffffff003031300d060960864801650304020105000420
            )
            mstore(add(p, sub(k, 32)), hash)
        }
        return keccak256(decrypted) == keccak256(expected);
    }

    // ---------------------------------------------------------------------------------------
    // Evidence and JSON

    /// The `index`-th dynamic `bytes` of an ABI-encoded tuple, with every offset and length
    /// checked against the input so that garbage is a named error, not an out-of-range read.
    function _dynamicField(bytes calldata data, uint256 index)
        private
        pure
        returns (bytes calldata field)
    {
        uint256 head = index * 32;
        if (data.length < head + 32) revert MalformedEvidence();
        uint256 offset = uint256(bytes32(data[head:head + 32]));
        if (offset > data.length - 32) revert MalformedEvidence();
        uint256 length = uint256(bytes32(data[offset:offset + 32]));
        if (length > data.length - offset - 32) revert MalformedEvidence();
        field = data[offset + 32:offset + 32 + length];
    }

    /// Positions of the status string and the quote body string inside the report, each key
    /// required exactly once among the top-level members.
    function _findFields(bytes calldata json)
        private
        pure
        returns (uint256 statusStart, uint256 statusEnd, uint256 bodyStart, uint256 bodyEnd)
    {
        bool haveStatus;
        bool haveBody;
        uint256 i = _skipWhitespace(json, 0);
        if (_at(json, i) != 0x7b) revert MalformedReport(i); // {
        i = _skipWhitespace(json, i + 1);
        if (_at(json, i) != 0x7d) {
            while (true) {
                (uint256 keyStart, uint256 keyEnd, uint256 next) = _string(json, i);
                i = _skipWhitespace(json, next);
                if (_at(json, i) != 0x3a) revert MalformedReport(i); // :
                i = _skipWhitespace(json, i + 1);
                bool isString = _at(json, i) == 0x22;
                uint256 valueStart = i;
                uint256 valueEnd;
                if (isString) {
                    (valueStart, valueEnd, i) = _string(json, i);
                } else {
                    i = _skipValue(json, i);
                }
                bytes32 key = keccak256(json[keyStart:keyEnd]);
                if (key == STATUS_KEY) {
                    if (haveStatus) revert DuplicateReportField("isvEnclaveQuoteStatus");
                    if (!isString) revert MalformedReport(valueStart);
                    (haveStatus, statusStart, statusEnd) = (true, valueStart, valueEnd);
                } else if (key == BODY_KEY) {
                    if (haveBody) revert DuplicateReportField("isvEnclaveQuoteBody");
                    if (!isString) revert MalformedReport(valueStart);
                    (haveBody, bodyStart, bodyEnd) = (true, valueStart, valueEnd);
                }
                i = _skipWhitespace(json, i);
                uint256 c = _at(json, i);
                if (c == 0x7d) break; // }
                if (c != 0x2c) revert MalformedReport(i); // ,
                i = _skipWhitespace(json, i + 1);
            }
        }
        if (_skipWhitespace(json, i + 1) != json.length) revert MalformedReport(i + 1);
        if (!haveStatus) revert MissingReportField("isvEnclaveQuoteStatus");
        if (!haveBody) revert MissingReportField("isvEnclaveQuoteBody");
    }

    /// The byte at `i`, or 0 past the end (0 is never valid where the scanner looks, so running
    /// off the end always ends in MalformedReport).
    function _at(bytes calldata b, uint256 i) private pure returns (uint256 c) {
        assembly ("memory-safe") {
            c := mul(lt(i, b.length), byte(0, calldataload(add(b.offset, i))))
        }
    }

    function _skipWhitespace(bytes calldata b, uint256 i) private pure returns (uint256) {
        uint256 c = _at(b, i);
        while (c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09) {
            c = _at(b, ++i);
        }
        return i;
    }

    /// A JSON string starting at `i` (the opening quote): the content's [start, end) and the
    /// position after the closing quote. Escapes are skipped, never interpreted.
    function _string(bytes calldata b, uint256 i)
        private
        pure
        returns (uint256 start, uint256 end, uint256 next)
    {
        if (_at(b, i) != 0x22) revert MalformedReport(i);
        uint256 length = b.length;
        uint256 j = i + 1;
        assembly ("memory-safe") {
            // Index (0 = most significant) of the first byte of a word with its high bit set.
            function firstMarked(z) -> k {
                if iszero(shr(128, z)) { k := 16 z := shl(128, z) }
                if iszero(shr(192, z)) { k := add(k, 8) z := shl(64, z) }
                if iszero(shr(224, z)) { k := add(k, 4) z := shl(32, z) }
                if iszero(shr(240, z)) { k := add(k, 2) z := shl(16, z) }
                if iszero(shr(248, z)) { k := add(k, 1) }
            }
            // 0x80 in each byte of w equal to the byte `pattern` is made of, 0 elsewhere; exact,
            // since (x & 0x7f) + 0x7f never carries into the next byte.
            function equalBytes(w, pattern) -> z {
                let low := 0x7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f
                let x := xor(w, pattern)
                z := not(or(or(add(and(x, low), low), x), low))
            }
            let base := b.offset
            let quotes := 0x2222222222222222222222222222222222222222222222222222222222222222
            let backslashes := 0x5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c
            // Thirty-two bytes per step: jump to the first '"' or '\' of each word. Bytes of a
            // word past the end of `b` are never used: a match there ends the loop as
            // "unterminated".
            for {} lt(j, length) {} {
                let w := calldataload(add(base, j))
                let z := or(equalBytes(w, quotes), equalBytes(w, backslashes))
                if iszero(z) {
                    j := add(j, 32)
                    continue
                }
                let k := firstMarked(z)
                j := add(j, k)
                if iszero(lt(j, length)) { break }
                if eq(byte(k, w), 0x22) { break }
                // A backslash escapes the next byte (\" does not end the string).
                j := add(j, 2)
            }
        }
        if (j >= length) revert MalformedReport(i);
        return (i + 1, j, j + 1);
    }

    /// Skips a non-string value: a nested object/array (strings inside it skipped whole) or a
    /// number/true/false/null.
    function _skipValue(bytes calldata b, uint256 i) private pure returns (uint256) {
        uint256 c = _at(b, i);
        if (c == 0x7b || c == 0x5b) {
            uint256 depth;
            while (true) {
                c = _at(b, i);
                if (c == 0) revert MalformedReport(i);
                if (c == 0x22) {
                    (,, i) = _string(b, i);
                    continue;
                }
                if (c == 0x7b || c == 0x5b) {
                    ++depth;
                } else if (c == 0x7d || c == 0x5d) {
                    if (--depth == 0) return i + 1;
                }
                ++i;
            }
        }
        uint256 start = i;
        while (
            c != 0 && c != 0x2c && c != 0x7d && c != 0x5d && c != 0x20 && c != 0x0a && c != 0x0d
                && c != 0x09
        ) {
            c = _at(b, ++i);
        }
        if (i == start) revert MalformedReport(i);
        return i;
    }

    // ---------------------------------------------------------------------------------------
    // Quote

    /// Base64 (standard alphabet) of exactly one 432-byte quote; no padding can occur at that
    /// length, so '=' is rejected like any other character outside the alphabet.
    function _decodeQuote(bytes calldata text) private pure returns (bytes memory quote) {
        if (text.length != QUOTE_BASE64_LENGTH) revert InvalidQuoteBody();
        // 32 bytes of slack: each group of 3 bytes is written with a whole-word store.
        quote = new bytes(QUOTE_LENGTH + 32);
        uint256 bad;
        assembly ("memory-safe") {
            mstore(quote, QUOTE_LENGTH)
            // A 256-entry lookup table in scratch memory past the free memory pointer: the
            // sextet of each byte value, or 0x80 for a byte outside the alphabet.
            let table := mload(0x40)
            let none := 0x8080808080808080808080808080808080808080808080808080808080808080
            mstore(table, none)
            mstore(add(table, 0x20), BASE64_20_3F)
            mstore(add(table, 0x40), BASE64_40_5F)
            mstore(add(table, 0x60), BASE64_60_7F)
            for { let k := 0x80 } lt(k, 0x120) { k := add(k, 0x20) } { mstore(add(table, k), none) }
            let src := text.offset
            let out := add(quote, 0x20)
            for { let i := 0 } lt(i, QUOTE_BASE64_LENGTH) { i := add(i, 4) } {
                let w := calldataload(add(src, i))
                let a := byte(0, mload(add(table, byte(0, w))))
                let b := byte(0, mload(add(table, byte(1, w))))
                let c := byte(0, mload(add(table, byte(2, w))))
                let d := byte(0, mload(add(table, byte(3, w))))
                bad := or(bad, or(or(a, b), or(c, d)))
                mstore(out, shl(232, or(or(shl(18, a), shl(12, b)), or(shl(6, c), d))))
                out := add(out, 3)
            }
        }
        if (bad & 0x80 != 0) revert InvalidQuoteBody();
    }

    function _u16le(bytes memory b, uint256 offset) private pure returns (uint16) {
        return uint16(uint8(b[offset])) | (uint16(uint8(b[offset + 1])) << 8);
    }
}
