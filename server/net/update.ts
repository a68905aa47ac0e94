/**
 * One topic's update as the server holds it: which topic, TR and sequence number, and
 * its wire messages, encoded on first use and then shared by every client that sends it.
 * Lazy encoding means an update coalesced away for every client is never encoded at all.
 */
import type { Wire } from '../../protocol/topicCodec.ts';
import type { Topic } from '../../protocol/topics.ts';

export interface Update {
  topic: Topic;
  tr: number;
  seq: number;
  /** The messages to send, or null when there is nothing to send (e.g. no map yet). */
  wires(): Wire[] | null;
}

export function lazyUpdate(topic: Topic, tr: number, seq: number, encode: () => Wire[] | null): Update {
  let cached: Wire[] | null | undefined;
  return {
    topic,
    tr,
    seq,
    wires() {
      if (cached === undefined) cached = encode();
      return cached;
    },
  };
}
