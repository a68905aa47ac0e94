/**
 * The session token: random, printed at start and put in the dashboard URL as `?token=`.
 * Whoever has it may control the replay; watching needs none.
 */
import { randomBytes, timingSafeEqual, createHash } from 'node:crypto';

/** 128 random bits, URL-safe. */
export function makeToken(): string {
  return randomBytes(16).toString('base64url');
}

/** Compares in constant time (hashing first so lengths do not leak either). */
export function tokenMatches(expected: string, given: string | null | undefined): boolean {
  if (typeof given !== 'string' || given.length === 0) return false;
  const a = createHash('sha256').update(expected).digest();
  const b = createHash('sha256').update(given).digest();
  return timingSafeEqual(a, b);
}
