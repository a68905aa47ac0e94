/**
 * Per-TR history of what the dashboard plots over time (coupling matrices, unit
 * responses, brain features, CKA). Indexed by TR, so a seek back simply forgets the TRs
 * after the new position (they will be recomputed and arrive again), and a reconnect
 * keeps what was already seen.
 *
 * Kept as raw typed arrays (one per TR, shared with the decoded frames, never copied):
 * the demo's 151×15 matrix over 300 TRs is under 3 MB.
 */

export interface TrRecord {
  /** Sliding-window r, units × features (unit-major). */
  r?: Float32Array;
  significant?: Uint8Array;
  /** The FDR threshold on |r| at this TR: the smallest |r| among significant pairs (NaN when none). */
  threshold?: number;
  unitResponses?: Float32Array;
  features?: Float32Array;
  cka?: Float32Array;
}

export class TrHistory {
  private records: (TrRecord | undefined)[];
  /** The highest TR recorded (−1 when empty). */
  last = -1;

  constructor(readonly trCount: number) {
    this.records = new Array(trCount);
  }

  get(tr: number): TrRecord | undefined {
    return this.records[tr];
  }

  /** The record of a TR, created on first use; a TR outside the run is ignored (undefined). */
  at(tr: number): TrRecord | undefined {
    if (!Number.isInteger(tr) || tr < 0 || tr >= this.trCount) return undefined;
    let rec = this.records[tr];
    if (!rec) this.records[tr] = rec = {};
    if (tr > this.last) this.last = tr;
    return rec;
  }

  /** Forgets every TR after `tr` (a seek back or a loop restarts the run from there). */
  truncateAfter(tr: number): void {
    for (let k = Math.max(tr + 1, 0); k <= this.last; k++) this.records[k] = undefined;
    this.last = Math.min(this.last, tr);
    while (this.last >= 0 && !this.records[this.last]) this.last--;
  }

  /** Number of TRs with a record. */
  get size(): number {
    let n = 0;
    for (let k = 0; k <= this.last; k++) if (this.records[k]) n++;
    return n;
  }

  /**
   * One value per TR (NaN where not seen) picked from each record, e.g. the r of one pair:
   * `series(rec => rec.r?.[u * F + f])`.
   */
  series(pick: (rec: TrRecord) => number | undefined): Float32Array {
    const out = new Float32Array(this.trCount).fill(NaN);
    for (let k = 0; k <= this.last; k++) {
      const rec = this.records[k];
      if (!rec) continue;
      const v = pick(rec);
      if (v !== undefined) out[k] = v;
    }
    return out;
  }
}

/** Smallest |r| among the significant pairs: the |r| a pair needed to pass the FDR at this TR. */
export function fdrThreshold(r: ArrayLike<number>, significant: ArrayLike<number>): number {
  let t = Infinity;
  const n = Math.min(r.length, significant.length);
  for (let i = 0; i < n; i++) {
    if (significant[i]) {
      const a = Math.abs(r[i]);
      if (a < t) t = a;
    }
  }
  return t === Infinity ? NaN : t;
}
