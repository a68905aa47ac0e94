/**
 * Serves the built dashboard (client/dist) read-only. Request paths are URL paths, never
 * file names from a client: they are decoded, normalised, and must stay inside the root
 * (no `..`, no NUL, no dotfiles), or the answer is 404. When the dashboard is not built,
 * `/` answers a plain page that says so.
 */
import { createReadStream, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/** The file under `root` for a URL path, or undefined when it is not a servable file. */
export function resolveStaticPath(root: string, urlPath: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return undefined;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return undefined;
  const parts = decoded.split('/').filter((p) => p.length > 0);
  if (parts.some((p) => p === '..' || p.startsWith('.'))) return undefined;
  const rootAbs = resolve(root);
  const rel = parts.length === 0 ? 'index.html' : normalize(parts.join('/'));
  const file = join(rootAbs, rel);
  if (!file.startsWith(rootAbs + sep)) return undefined;
  try {
    const st = statSync(file);
    if (st.isFile()) return file;
    if (st.isDirectory()) {
      const index = join(file, 'index.html');
      if (statSync(index).isFile()) return index;
    }
  } catch {
    // not there
  }
  return undefined;
}

export function dashboardBuilt(root: string): boolean {
  return resolveStaticPath(root, '/') !== undefined;
}

const NOT_BUILT = `<!doctype html>
<html><head><meta charset="utf-8"><title>syncact</title></head>
<body><h1>syncact</h1>
<p>The dashboard is not built (no <code>client/dist</code>). The session is live: the
WebSocket is at <code>/ws</code>, health at <a href="/healthz">/healthz</a>, metrics at
<a href="/metrics">/metrics</a>.</p>
</body></html>
`;

/** Answers a GET/HEAD for a static path; returns false when nothing matched (caller 404s). */
export function serveStatic(root: string, req: IncomingMessage, res: ServerResponse, urlPath: string): boolean {
  const file = resolveStaticPath(root, urlPath);
  if (!file) {
    if (urlPath !== '/' && urlPath !== '/index.html') return false;
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(NOT_BUILT) });
    res.end(req.method === 'HEAD' ? undefined : NOT_BUILT);
    return true;
  }
  const size = statSync(file).size;
  res.writeHead(200, {
    'content-type': TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
    'content-length': size,
    'x-content-type-options': 'nosniff',
  });
  if (req.method === 'HEAD') {
    res.end();
    return true;
  }
  const stream = createReadStream(file);
  stream.on('error', () => res.destroy());
  stream.pipe(res);
  return true;
}
