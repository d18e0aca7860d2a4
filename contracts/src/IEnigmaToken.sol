// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// The parts of the ENG token (ERC-20 with ERC-2612 permit) that `Enigma` uses.
interface IEnigmaToken {
    function transfer(address to, uint256 value) external returns (bool);
    function transferFrom(address from, address to, uint256 value) external returns (bool);
    function allowance(address owner, address spender) external view returns (uint256);
    function permit(
        address owner,
        address spender,
        uint256 value,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;
}
