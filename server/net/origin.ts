/**
 * Which browser pages may open the WebSocket. Browsers always send `Origin` on a
 * WebSocket handshake, and any web page can try to connect to 127.0.0.1, so the check
 * is what keeps a random site from watching (or, with a leaked token, steering) a
 * session. Allowed by default:
 * - no Origin header (not a browser: scripts, the CLI, tests);
 * - an Origin on a loopback host (localhost, 127.x, [::1]) on any port (the dashboard's
 *   dev server);
 * - same-origin (Origin host == Host header) when the Host is a loopback name or the
 *   host the server was told to bind, so a DNS-rebinding name pointed at 127.0.0.1 does
 *   not count as same-origin;
 * - anything listed in `allowedOrigins` (exact `scheme://host:port` strings).
 */

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])$/i;

export function isLoopbackHostname(hostname: string): boolean {
  return LOOPBACK.test(hostname);
}

export interface OriginPolicy {
  /** The host the server was asked to bind (e.g. 0.0.0.0 or a LAN name). */
  bindHost: string;
  allowedOrigins: readonly string[];
}

export function isOriginAllowed(origin: string | undefined, hostHeader: string | undefined, policy: OriginPolicy): boolean {
  if (origin === undefined) return true;
  if (policy.allowedOrigins.includes(origin)) return true;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false; // includes the literal "null" origin of sandboxed frames and file: pages
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  if (isLoopbackHostname(url.hostname)) return true;
  if (!hostHeader || url.host.toLowerCase() !== hostHeader.toLowerCase()) return false;
  return url.hostname.toLowerCase() === policy.bindHost.toLowerCase();
}
