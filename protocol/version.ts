/**
 * Versions of the wire protocol. JSON messages carry their type's version in `v` (see
 * MESSAGES in messages.ts); binary frames carry BINARY_VERSION in their header. A peer that
 * sees another version refuses the message with PROTOCOL_VERSION_MISMATCH instead of
 * guessing at a layout it does not know.
 */

/** The protocol as a whole, announced in `hello`; bumped when any message changes incompatibly. */
export const PROTOCOL_VERSION = 1 as const;

/** Layout version of the binary frame header (protocol/binary.ts). */
export const BINARY_VERSION = 1 as const;
