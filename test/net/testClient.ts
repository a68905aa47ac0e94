/**
 * A real ws client for server tests: records every message it receives (decoded with
 * the protocol's own decoder) and lets a test wait, with a deadline, for a condition.
 */
import { WebSocket, type ClientOptions } from 'ws';
import { decodeServerMessage, type Decoded } from '../../protocol/topicCodec.ts';
import type { Frame } from '../../protocol/binary.ts';
import type { ServerMessage } from '../../protocol/messages.ts';

export class TestClient {
  readonly received: Decoded[] = [];
  closed: { code: number; reason: string } | null = null;
  private waiters: (() => void)[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.received.push(decodeServerMessage(isBinary ? new Uint8Array(data) : data.toString('utf8')));
      this.wake();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.wake();
    });
    ws.on('error', () => undefined);
  }

  static connect(url: string, options: ClientOptions = {}): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, options);
      const client = new TestClient(ws);
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { statusCode: res.statusCode })));
      ws.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves when `cond()` holds (checked after every message), rejects after `ms`. */
  async until(cond: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  json<T extends ServerMessage['type']>(type: T): Extract<ServerMessage, { type: T }>[] {
    return this.received.flatMap((d) => (d.kind === 'json' && d.message.type === type ? [d.message as Extract<ServerMessage, { type: T }>] : []));
  }

  frames(topic: number, part?: number): Frame[] {
    return this.received.flatMap((d) => (d.kind === 'frame' && d.frame.topic === topic && (part === undefined || d.frame.part === part) ? [d.frame] : []));
  }

  send(message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  close(): Promise<void> {
    if (this.closed || this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.ws.once('close', () => resolve());
      this.ws.terminate();
    });
  }
}

/** Yields to the event loop (lets sockets flush) between published TRs. */
export const tick = () => new Promise<void>((r) => setImmediate(r));
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
