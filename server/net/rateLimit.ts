/**
 * A token bucket per connection: a client may send `burst` messages at once and
 * `perSecond` on average; beyond that its messages are refused with PROTOCOL_RATE_LIMITED
 * (and not processed), so a flood costs the server one comparison per message.
 */
export interface RateLimitOptions {
  burst: number;
  perSecond: number;
}

export class RateLimiter {
  private tokens: number;
  private last: number;

  constructor(
    private readonly options: RateLimitOptions,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = options.burst;
    this.last = now();
  }

  /** True when one more message is allowed now. */
  take(): boolean {
    const t = this.now();
    this.tokens = Math.min(this.options.burst, this.tokens + ((t - this.last) / 1000) * this.options.perSecond);
    this.last = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
