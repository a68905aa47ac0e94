import { describe, expect, it } from 'vitest';
import { parseClientMessage, validateControlCommand } from '../../protocol/validate.ts';
import { MESSAGES } from '../../protocol/messages.ts';
import { encodeFrame } from '../../protocol/binary.ts';
import { SyncactError } from '../../server/errors.ts';
import { createRng } from '../../server/engine/random.ts';

function codeOf(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SyncactError);
    return { code: (e as SyncactError).code, message: (e as SyncactError).message };
  }
  throw new Error('nothing was thrown');
}

const parse = (x: unknown) => parseClientMessage(typeof x === 'string' ? x : JSON.stringify(x), false);

describe('client message validation', () => {
  it('accepts every client message type at its version', () => {
    expect(parse({ type: 'subscribe', v: 1, id: 3, topics: ['state', 'map', 'state'], map: { kind: 'unit-t', index: 2, slices: { axis: 'z', indices: [0, 4] } } })).toEqual({
      type: 'subscribe',
      v: 1,
      id: 3,
      topics: ['state', 'map'],
      map: { kind: 'unit-t', index: 2, slices: { axis: 'z', indices: [0, 4] } },
    });
    expect(parse({ type: 'unsubscribe', v: 1, topics: ['cka'] })).toEqual({ type: 'unsubscribe', v: 1, topics: ['cka'] });
    expect(parse({ type: 'auth', v: 1, token: 'abc' })).toEqual({ type: 'auth', v: 1, token: 'abc' });
    expect(parse({ type: 'ping', v: 1, id: 0 })).toEqual({ type: 'ping', v: 1, id: 0 });
    for (const command of [
      { op: 'play' },
      { op: 'pause' },
      { op: 'seek', tr: 12 },
      { op: 'speed', speed: 0.25 },
      { op: 'speed', speed: 20 },
      { op: 'speed', speed: 'max' },
      { op: 'loop', loop: true },
      { op: 'select', target: 'network', index: 3 },
    ]) {
      expect(parse({ type: 'control', v: 1, command })).toEqual({ type: 'control', v: 1, command });
    }
  });

  it('every client type in MESSAGES has a validator', () => {
    const samples: Record<string, unknown> = {
      subscribe: { topics: [] },
      unsubscribe: { topics: [] },
      auth: { token: 't' },
      control: { command: { op: 'play' } },
      ping: {},
    };
    for (const [type, decl] of Object.entries(MESSAGES)) {
      if (decl.from !== 'client') continue;
      expect(samples[type], type).toBeDefined();
      expect(parse({ type, v: decl.version, ...(samples[type] as object) }).type).toBe(type);
    }
  });

  it.each([
    ['not JSON', '{"type":', 'PROTOCOL_INVALID_MESSAGE', /not JSON/],
    ['an array', '[1,2]', 'PROTOCOL_INVALID_MESSAGE', /JSON object/],
    ['null', 'null', 'PROTOCOL_INVALID_MESSAGE', /JSON object/],
    ['no type', '{"v":1}', 'PROTOCOL_UNKNOWN_TYPE', /undefined/],
    ['unknown type', '{"type":"rm -rf","v":1}', 'PROTOCOL_UNKNOWN_TYPE', /"rm -rf"/],
    ['prototype key as type', '{"type":"toString","v":1}', 'PROTOCOL_UNKNOWN_TYPE', /toString/],
    ['a server type', '{"type":"hello","v":1}', 'PROTOCOL_UNKNOWN_TYPE', /sent by the server/],
    ['wrong version', '{"type":"ping","v":2}', 'PROTOCOL_VERSION_MISMATCH', /ping: version 2, this server speaks ping v1/],
    ['missing version', '{"type":"ping"}', 'PROTOCOL_VERSION_MISMATCH', /version undefined/],
    ['extra field', '{"type":"ping","v":1,"file":"/etc/passwd"}', 'PROTOCOL_INVALID_MESSAGE', /unknown field "file"/],
    ['bad id', '{"type":"ping","v":1,"id":-1}', 'PROTOCOL_INVALID_MESSAGE', /id must be/],
    ['unknown topic', '{"type":"subscribe","v":1,"topics":["secrets"]}', 'PROTOCOL_INVALID_MESSAGE', /unknown topic "secrets"/],
    ['topics not an array', '{"type":"subscribe","v":1,"topics":"state"}', 'PROTOCOL_INVALID_MESSAGE', /array/],
    ['bad map kind', '{"type":"subscribe","v":1,"topics":["map"],"map":{"kind":"file"}}', 'PROTOCOL_INVALID_MESSAGE', /kind must be/],
    ['bad slice axis', '{"type":"subscribe","v":1,"topics":["map"],"map":{"slices":{"axis":"w","indices":[1]}}}', 'PROTOCOL_INVALID_MESSAGE', /axis/],
    ['no slice indices', '{"type":"subscribe","v":1,"topics":["map"],"map":{"slices":{"axis":"z","indices":[]}}}', 'PROTOCOL_INVALID_MESSAGE', /1\.\.1024/],
    ['empty token', '{"type":"auth","v":1,"token":""}', 'PROTOCOL_INVALID_MESSAGE', /token/],
    ['unknown op', '{"type":"control","v":1,"command":{"op":"shutdown"}}', 'PROTOCOL_INVALID_MESSAGE', /unknown op "shutdown"/],
    ['fractional seek', '{"type":"control","v":1,"command":{"op":"seek","tr":1.5}}', 'PROTOCOL_INVALID_MESSAGE', /tr must be/],
    ['speed too high', '{"type":"control","v":1,"command":{"op":"speed","speed":21}}', 'PROTOCOL_INVALID_MESSAGE', /0\.25\.\.20/],
    ['speed NaN-ish', '{"type":"control","v":1,"command":{"op":"speed","speed":"fast"}}', 'PROTOCOL_INVALID_MESSAGE', /speed must be/],
    ['select target', '{"type":"control","v":1,"command":{"op":"select","target":"voxel","index":1}}', 'PROTOCOL_INVALID_MESSAGE', /target/],
  ])('refuses %s', (_name, text, code, message) => {
    const e = codeOf(() => parseClientMessage(text, false));
    expect(e.code).toBe(code);
    expect(e.message).toMatch(message);
  });

  it('refuses binary frames from clients, garbage or well-formed', () => {
    expect(codeOf(() => parseClientMessage(new Uint8Array([1, 2, 3]), true))).toMatchObject({ code: 'PROTOCOL_BAD_FRAME', message: expect.stringMatching(/shorter than the 40-byte header/) });
    const valid = encodeFrame({ type: 'update', topic: 1, part: 0, tr: 0, seq: 0, shape: [1], data: new Float32Array(1) });
    expect(codeOf(() => parseClientMessage(valid, true))).toMatchObject({ code: 'PROTOCOL_BAD_FRAME', message: expect.stringMatching(/JSON text messages only/) });
  });

  it('validateControlCommand refuses a non-object', () => {
    expect(codeOf(() => validateControlCommand('play')).code).toBe('PROTOCOL_INVALID_MESSAGE');
  });

  it('seeded fuzz: arbitrary text and mutated messages parse or throw a SyncactError, nothing else', () => {
    const rng = createRng(7);
    const seeds = [
      '{"type":"subscribe","v":1,"topics":["state","map"],"map":{"kind":"unit-t","index":2,"slices":{"axis":"z","indices":[1]}}}',
      '{"type":"control","v":1,"id":4,"command":{"op":"speed","speed":2}}',
      '{"type":"auth","v":1,"token":"abc"}',
    ];
    const alphabet = '{}[]":,0123456789.-eE truefalsnul\\abcdefghijklmnopqrstuvwxyz\u0000\u00e9';
    let accepted = 0;
    for (let i = 0; i < 5000; i++) {
      let text: string;
      if (i % 2 === 0) {
        const n = rng.int(60);
        text = Array.from({ length: n }, () => alphabet[rng.int(alphabet.length)]).join('');
      } else {
        const chars = [...seeds[rng.int(seeds.length)]];
        const edits = 1 + rng.int(3);
        for (let k = 0; k < edits; k++) chars[rng.int(chars.length)] = alphabet[rng.int(alphabet.length)];
        text = chars.join('');
      }
      try {
        const m = parseClientMessage(text, false);
        accepted++;
        expect(['subscribe', 'unsubscribe', 'auth', 'control', 'ping']).toContain(m.type);
      } catch (e) {
        expect(e).toBeInstanceOf(SyncactError);
        expect((e as SyncactError).code).toMatch(/^PROTOCOL_(INVALID_MESSAGE|UNKNOWN_TYPE|VERSION_MISMATCH)$/);
      }
    }
    expect(accepted).toBeGreaterThan(0);
  });
});
