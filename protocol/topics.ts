/**
 * The topics a client can subscribe to. Each topic is one kind of per-TR state; the server
 * keeps the latest update of each topic, sends it to subscribers, and coalesces per topic
 * for slow clients (one pending update per topic per client, replaced by newer ones).
 * Topic ids are the byte in the binary frame header; `parts` name the arrays a topic's
 * binary frames carry (the `part` byte), in the order they are sent.
 */

export const TOPICS = ['state', 'frame', 'units', 'coupling', 'map', 'annotations', 'cka', 'telemetry'] as const;
export type Topic = (typeof TOPICS)[number];

/** Topic id on the wire. 0 is the session's own arrays, sent after `hello` (not subscribable). */
export const TOPIC_IDS = {
  session: 0,
  state: 1,
  frame: 2,
  units: 3,
  coupling: 4,
  map: 5,
  annotations: 6,
  cka: 7,
  telemetry: 8,
} as const satisfies Record<Topic | 'session', number>;

export type TopicId = (typeof TOPIC_IDS)[keyof typeof TOPIC_IDS];

/** Binary parts per topic (index = `part` byte). Topics without binary parts travel as JSON only. */
export const TOPIC_PARTS = {
  session: ['maskIndices', 'background'],
  state: [],
  frame: ['rgb'],
  units: ['unitResponses', 'features'],
  coupling: ['r', 'q', 'significant'],
  map: ['values'],
  annotations: [],
  cka: ['cka'],
  telemetry: [],
} as const satisfies Record<Topic | 'session', readonly string[]>;

const BY_ID = new Map<number, Topic | 'session'>(
  (Object.entries(TOPIC_IDS) as [Topic | 'session', number][]).map(([name, id]) => [id, name]),
);

export function isTopic(x: unknown): x is Topic {
  return typeof x === 'string' && (TOPICS as readonly string[]).includes(x);
}

/** The topic name for a header byte, or undefined when the byte names no topic. */
export function topicName(id: number): Topic | 'session' | undefined {
  return BY_ID.get(id);
}
