import { describe, expect, it } from 'vitest';
import {
  decodeServerMessage,
  encodeAnnotationsTopic,
  encodeCkaTopic,
  encodeCouplingTopic,
  encodeFrameTopic,
  encodeMapTopic,
  encodeSessionArrays,
  encodeStateTopic,
  encodeTelemetryTopic,
  encodeUnitsTopic,
  type Wire,
} from '../../protocol/topicCodec.ts';
import type { Frame } from '../../protocol/binary.ts';
import type { ServerMessage } from '../../protocol/messages.ts';
import { TOPIC_IDS, TOPIC_PARTS } from '../../protocol/topics.ts';
import { scatterMap } from '../../protocol/mapLayout.ts';
import { SyncactError } from '../../server/errors.ts';
import { makeInfo, makeState, SMALL } from '../net/fakeSession.ts';

const frames = (ws: Wire[]): Frame[] => ws.map((w) => {
  const d = decodeServerMessage(w);
  if (d.kind !== 'frame') throw new Error('expected a frame');
  return d.frame;
});
const json = (w: Wire): ServerMessage => {
  const d = decodeServerMessage(w);
  if (d.kind !== 'json') throw new Error('expected JSON');
  return d.message;
};

describe('topic codecs (bytes only, no sockets)', () => {
  const s = makeState(7);
  const info = makeInfo();

  it('state: JSON with tr, seq, time and clock', () => {
    const [w] = encodeStateTopic(s, 41);
    expect(json(w)).toEqual({ type: 'state', v: 1, tr: 7, seq: 41, time: 7, clock: s.clock });
  });

  it('units: unit responses then features as float32 parts', () => {
    const [u, f] = frames(encodeUnitsTopic(s, 3));
    expect(u).toMatchObject({ topic: TOPIC_IDS.units, part: TOPIC_PARTS.units.indexOf('unitResponses'), tr: 7, seq: 3, shape: [SMALL.units] });
    expect(u.data).toEqual(s.unitResponses);
    expect(f).toMatchObject({ part: TOPIC_PARTS.units.indexOf('features'), shape: [SMALL.features] });
    expect(f.data).toEqual(s.features);
  });

  it('coupling: r, q (NaN kept) and significance as [units, features]', () => {
    const [r, q, sig] = frames(encodeCouplingTopic(s, 5));
    for (const fr of [r, q, sig]) expect(fr).toMatchObject({ topic: TOPIC_IDS.coupling, tr: 7, seq: 5, shape: [SMALL.units, SMALL.features] });
    expect([r.part, q.part, sig.part]).toEqual([0, 1, 2]);
    expect(r.data).toEqual(s.coupling);
    expect(Number.isNaN(q.data[0])).toBe(true);
    expect(q.data).toEqual(s.couplingQ);
    expect(sig.data).toBeInstanceOf(Uint8Array);
    expect(sig.data).toEqual(s.significant);
  });

  it('frame: [height, width, 3] uint8, nothing for a TR without a frame', () => {
    const [fr] = frames(encodeFrameTopic(s, 0)!);
    expect(fr.shape).toEqual([4, 6, 3]);
    expect(fr.data).toEqual(s.frame!.rgb);
    expect(encodeFrameTopic({ ...s, frame: null }, 0)).toBeNull();
  });

  it('cka and telemetry', () => {
    const [c] = frames(encodeCkaTopic(s, 2));
    expect(c.data).toEqual(s.cka);
    expect(json(encodeTelemetryTopic(s, 2, { clients: 3, dropped: 9 })[0])).toEqual({
      type: 'telemetry', v: 1, tr: 7, seq: 2, stageMs: s.telemetry.stageMs, trsPerSecond: 20, lagMs: 0, clients: 3, dropped: 9,
    });
  });

  it('annotations: NaN scores travel as null', () => {
    const rows = [{ unit: 0, label: 'visual', sign: 1 as const, score: 0.8, p: 0.01, q: NaN }];
    const m = json(encodeAnnotationsTopic(rows, 7, 1)[0]);
    expect(m).toEqual({ type: 'annotations', v: 1, tr: 7, seq: 1, rows: [{ ...rows[0], q: null }] });
  });

  it('map: description then the scattered volume or slices, same seq', () => {
    const values = Float32Array.from(info.maskIndices, (g) => g * 0.5);
    const map = { tr: 6, kind: 'unit-t' as const, index: 2, values };
    const [meta, bin] = encodeMapTopic(info, map, { axis: 'y', indices: [1, 3] }, 7, 12);
    const m = json(meta);
    expect(m).toMatchObject({ type: 'map', tr: 7, seq: 12, mapTr: 6, kind: 'unit-t', index: 2, slices: { axis: 'y', indices: [1, 3] }, shape: [2, 4, 6] });
    const [fr] = frames([bin]);
    expect(fr).toMatchObject({ topic: TOPIC_IDS.map, tr: 7, seq: 12, shape: [2, 4, 6] });
    expect(fr.data).toEqual(scatterMap(info.grid.dims, info.maskIndices, values, { axis: 'y', indices: [1, 3] }));
    expect(() => encodeMapTopic(info, { ...map, values: new Float32Array(3) }, null, 7, 1)).toThrow(SyncactError);
  });

  it('session arrays: mask indices (uint32) and background (float32)', () => {
    const [mask, bg] = frames(encodeSessionArrays(info, -1, 0));
    expect(mask).toMatchObject({ type: 'session', topic: TOPIC_IDS.session, part: 0, tr: 0 });
    expect(mask.data).toEqual(info.maskIndices);
    expect(bg.data).toEqual(info.background);
  });

  it('decodeServerMessage refuses client types, unknown types, other versions and non-JSON', () => {
    const code = (w: Wire) => {
      try {
        decodeServerMessage(w);
      } catch (e) {
        return (e as SyncactError).code;
      }
      return 'none';
    };
    expect(code('{"type":"subscribe","v":1}')).toBe('PROTOCOL_UNKNOWN_TYPE');
    expect(code('{"type":"nope","v":1}')).toBe('PROTOCOL_UNKNOWN_TYPE');
    expect(code('{"type":"state","v":2}')).toBe('PROTOCOL_VERSION_MISMATCH');
    expect(code('state')).toBe('PROTOCOL_INVALID_MESSAGE');
    expect(code(new Uint8Array(5))).toBe('PROTOCOL_BAD_FRAME');
  });
});
