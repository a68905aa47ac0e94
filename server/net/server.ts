/**
 * The live server: one HTTP server for the dashboard (client/dist), `/healthz`,
 * `/metrics` and the WebSocket at `/ws`, around one live session.
 *
 * Safe defaults: binds 127.0.0.1; WebSocket handshakes from foreign browser origins get
 * 403; incoming WebSocket messages are capped at `maxPayload` (a larger one closes that
 * client with 1009); control needs the session token; dead connections are found by
 * ping/pong and terminated. Clients never name files: the only paths served are URL
 * paths under the dashboard folder.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, WebSocket } from 'ws';
import { SyncactError } from '../errors.ts';
import { Hub } from './hub.ts';
import type { LiveSession } from './liveSession.ts';
import { ServerMetrics } from './metrics.ts';
import { isOriginAllowed } from './origin.ts';
import type { RateLimitOptions } from './rateLimit.ts';
import { serveStatic } from './staticFiles.ts';
import { makeToken, tokenMatches } from './token.ts';

export interface ServerOptions {
  session: LiveSession;
  /** Interface to bind; 127.0.0.1 unless the user asks for another (`--host`). */
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** The control token; a random one when left out. */
  token?: string;
  /** The built dashboard; default client/dist of this checkout. */
  staticDir?: string;
  /** Extra browser origins allowed to connect (exact `scheme://host:port`). */
  allowedOrigins?: string[];
  /** Largest WebSocket message accepted from a client, bytes (default 64 KiB). */
  maxPayload?: number;
  /** A client's socket buffer above which its updates are coalesced, bytes (default 1 MiB). */
  highWaterBytes?: number;
  /** Ping interval; a client that has not answered the previous ping is terminated (default 30 s). */
  heartbeatMs?: number;
  /** Per-client message rate (default burst 200, 100 per second). */
  rateLimit?: RateLimitOptions;
  /** WebSocket clients at once; more are refused with HTTP 503 (default 256). */
  maxClients?: number;
  /**
   * The initial selection, i.e. the map clients see by default (unit 0 when left out; a
   * session whose maps exist only for some units should name one of those).
   */
  selection?: { target: 'unit' | 'network'; index: number };
}

export interface ClientStats {
  id: number;
  subscriptions: string[];
  /** Updates waiting in this client's slots (≤ number of topics). */
  pending: number;
  dropped: number;
  bufferedAmount: number;
  authorized: boolean;
}

export interface ServerStats {
  currentTr: number;
  trsProcessed: number;
  dropped: number;
  clients: ClientStats[];
}

export interface RunningServer {
  /** The dashboard URL with the token: `http://HOST:PORT/?token=TOKEN`. */
  url: string;
  /** The WebSocket endpoint (add `?token=` to control, `?topics=a,b` to subscribe at once). */
  wsUrl: string;
  host: string;
  port: number;
  token: string;
  stats(): ServerStats;
  /** Closes every client (1001), stops listening and unsubscribes from the session. */
  close(): Promise<void>;
}

export const DEFAULTS = {
  host: '127.0.0.1',
  maxPayload: 64 * 1024,
  highWaterBytes: 1024 * 1024,
  heartbeatMs: 30_000,
  rateLimit: { burst: 200, perSecond: 100 },
  maxClients: 256,
} as const;

const DEFAULT_STATIC_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'client', 'dist');

/** How long close() lets clients answer the close frame before terminating them. */
const CLOSE_GRACE_MS = 250;

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

function refuse(socket: Duplex, status: number, reason: string): void {
  const body = `${reason}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const host = options.host ?? DEFAULTS.host;
  const token = options.token ?? makeToken();
  const staticDir = options.staticDir ?? DEFAULT_STATIC_DIR;
  const heartbeatMs = options.heartbeatMs ?? DEFAULTS.heartbeatMs;
  const policy = { bindHost: host, allowedOrigins: options.allowedOrigins ?? [] };
  const metrics = new ServerMetrics();
  const hub = new Hub(options.session, {
    token,
    metrics,
    highWaterBytes: options.highWaterBytes ?? DEFAULTS.highWaterBytes,
    rateLimit: options.rateLimit ?? DEFAULTS.rateLimit,
    heartbeatMs,
    selection: options.selection,
  });

  const http = createServer((req, res) => handleHttp(req, res));
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxPayload ?? DEFAULTS.maxPayload,
    perMessageDeflate: false,
    clientTracking: false,
  });

  function handleHttp(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (path === '/healthz') {
      const body = JSON.stringify({
        status: hub.failed ? 'failed' : hub.ended ? 'ended' : 'ok',
        tr: hub.currentTr,
        clients: hub.connections.size,
        lastFault: hub.lastFault,
      });
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(body + '\n');
      return;
    }
    if (path === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-store' });
      res.end(metrics.render());
      return;
    }
    if (path === '/ws') {
      res.writeHead(426, { upgrade: 'websocket', 'content-type': 'text/plain' }).end('WebSocket endpoint\n');
      return;
    }
    if (!serveStatic(staticDir, req, res, path)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  }

  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/ws') {
      metrics.refuseUpgrade('path');
      refuse(socket, 404, 'Not Found');
      return;
    }
    if (!isOriginAllowed(req.headers.origin, req.headers.host, policy)) {
      metrics.refuseUpgrade('origin');
      refuse(socket, 403, 'Forbidden');
      return;
    }
    if (hub.connections.size >= (options.maxClients ?? DEFAULTS.maxClients)) {
      metrics.refuseUpgrade('capacity');
      refuse(socket, 503, 'Service Unavailable');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      ws.on('error', (err: Error & { code?: string }) => metrics.reject(err.code ?? 'WS_ERROR'));
      hub.attach(ws, {
        authorized: tokenMatches(token, url.searchParams.get('token')),
        topicsQuery: url.searchParams.get('topics'),
      });
    });
  });
  // malformed HTTP (garbage bytes on the port): answer 400 and drop only that socket
  http.on('clientError', (_err, socket: Duplex) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error & { code?: string }) => {
      reject(new SyncactError('SERVER_LISTEN_FAILED', `cannot listen on ${host}:${options.port ?? 0}: ${err.code ?? err.message}`));
    };
    http.once('error', onError);
    http.listen(options.port ?? 0, host, () => {
      http.off('error', onError);
      resolve();
    });
  });
  http.on('error', () => undefined); // after listening, per-socket errors are handled per socket

  hub.start();

  const heartbeat = setInterval(() => {
    for (const c of hub.connections) {
      if (!c.alive) {
        c.ws.terminate();
        continue;
      }
      c.alive = false;
      c.ws.ping();
    }
  }, heartbeatMs);
  heartbeat.unref();

  const address = http.address();
  const port = typeof address === 'object' && address ? address.port : (options.port ?? 0);
  const base = `http://${urlHost(host)}:${port}`;
  let closing: Promise<void> | undefined;

  return {
    url: `${base}/?token=${encodeURIComponent(token)}`,
    wsUrl: `ws://${urlHost(host)}:${port}/ws`,
    host,
    port,
    token,
    stats: () => ({
      currentTr: hub.currentTr,
      trsProcessed: metrics.trsProcessed,
      dropped: metrics.dropped,
      clients: [...hub.connections].map((c) => ({
        id: c.id,
        subscriptions: [...c.subscriptions],
        pending: c.pending.size,
        dropped: c.dropped,
        bufferedAmount: c.ws.bufferedAmount,
        authorized: c.authorized,
      })),
    }),
    close() {
      closing ??= (async () => {
        clearInterval(heartbeat);
        hub.stop();
        const sockets = [...hub.connections].map((c) => c.ws);
        for (const ws of sockets) ws.close(1001, 'server closing');
        await Promise.race([
          Promise.all(sockets.map((ws) => new Promise<void>((r) => (ws.readyState === WebSocket.CLOSED ? r() : ws.once('close', () => r()))))),
          new Promise<void>((r) => setTimeout(r, CLOSE_GRACE_MS)),
        ]);
        for (const ws of sockets) ws.terminate();
        wss.close();
        await new Promise<void>((r) => {
          http.close(() => r());
          http.closeAllConnections();
        });
      })();
      return closing;
    },
  };
}
