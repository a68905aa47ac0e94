/**
 * The server's counters and their Prometheus text exposition (`GET /metrics`, format
 * 0.0.4). Stage latencies come from the pipeline's per-TR telemetry; the rest is counted
 * by the server itself. Times are exported in seconds, as Prometheus expects.
 */
import type { Telemetry } from '../../protocol/state.ts';

export class ServerMetrics {
  trsProcessed = 0;
  currentTr = -1;
  clients = 0;
  connectionsTotal = 0;
  /** Updates replaced in a slow client's pending slot before they were sent. */
  dropped = 0;
  messagesSent = 0;
  bytesSent = 0;
  /** Client messages refused, by error code. */
  readonly rejected = new Map<string, number>();
  /** HTTP upgrades refused, by reason. */
  readonly refusedUpgrades = new Map<string, number>();
  readonly stageSum = new Map<string, number>();
  readonly stageCount = new Map<string, number>();
  readonly stageLast = new Map<string, number>();
  lagMs = 0;
  trsPerSecond = 0;
  faults = 0;
  /** Time spent handing queued TRs to clients (the server's own per-TR cost). */
  fanOutMsSum = 0;
  fanOutBatches = 0;

  onTelemetry(t: Telemetry): void {
    this.trsProcessed++;
    for (const [stage, ms] of Object.entries(t.stageMs)) {
      if (!Number.isFinite(ms)) continue;
      this.stageSum.set(stage, (this.stageSum.get(stage) ?? 0) + ms);
      this.stageCount.set(stage, (this.stageCount.get(stage) ?? 0) + 1);
      this.stageLast.set(stage, ms);
    }
    if (Number.isFinite(t.lagMs)) this.lagMs = t.lagMs;
    if (Number.isFinite(t.trsPerSecond)) this.trsPerSecond = t.trsPerSecond;
  }

  onFanOut(ms: number, batches: number): void {
    this.fanOutMsSum += ms;
    this.fanOutBatches += batches;
  }

  reject(code: string): void {
    this.rejected.set(code, (this.rejected.get(code) ?? 0) + 1);
  }

  refuseUpgrade(reason: string): void {
    this.refusedUpgrades.set(reason, (this.refusedUpgrades.get(reason) ?? 0) + 1);
  }

  render(): string {
    const out: string[] = [];
    const metric = (name: string, type: 'counter' | 'gauge' | 'summary', help: string, lines: string[]) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...lines);
    };
    const labelled = (name: string, label: string, m: Map<string, number>, scale = 1) =>
      [...m.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${name}{${label}="${escapeLabel(k)}"} ${num(v * scale)}`);

    metric('syncact_trs_processed_total', 'counter', 'TR states received from the pipeline.', [`syncact_trs_processed_total ${this.trsProcessed}`]);
    metric('syncact_current_tr', 'gauge', 'Index of the latest TR (-1 before the first).', [`syncact_current_tr ${this.currentTr}`]);
    metric('syncact_stage_latency_seconds', 'summary', 'Per-stage processing time per TR, from pipeline telemetry.', [
      ...labelled('syncact_stage_latency_seconds_sum', 'stage', this.stageSum, 1e-3),
      ...labelled('syncact_stage_latency_seconds_count', 'stage', this.stageCount),
    ]);
    metric('syncact_stage_last_latency_seconds', 'gauge', 'Per-stage processing time of the latest TR.', labelled('syncact_stage_last_latency_seconds', 'stage', this.stageLast, 1e-3));
    metric('syncact_lag_seconds', 'gauge', 'How far the latest TR finished behind its scheduled time.', [`syncact_lag_seconds ${num(this.lagMs / 1000)}`]);
    metric('syncact_trs_per_second', 'gauge', 'Recent processing rate reported by the pipeline.', [`syncact_trs_per_second ${num(this.trsPerSecond)}`]);
    metric('syncact_fanout_seconds', 'summary', 'Server time spent sending TRs and annotation updates to clients (count: TRs fanned out).', [
      `syncact_fanout_seconds_sum ${num(this.fanOutMsSum / 1000)}`,
      `syncact_fanout_seconds_count ${this.fanOutBatches}`,
    ]);
    metric('syncact_clients', 'gauge', 'Connected WebSocket clients.', [`syncact_clients ${this.clients}`]);
    metric('syncact_connections_total', 'counter', 'WebSocket connections accepted.', [`syncact_connections_total ${this.connectionsTotal}`]);
    metric('syncact_dropped_updates_total', 'counter', 'Topic updates coalesced away for slow clients.', [`syncact_dropped_updates_total ${this.dropped}`]);
    metric('syncact_messages_sent_total', 'counter', 'WebSocket messages sent.', [`syncact_messages_sent_total ${this.messagesSent}`]);
    metric('syncact_bytes_sent_total', 'counter', 'Payload bytes sent over WebSockets.', [`syncact_bytes_sent_total ${this.bytesSent}`]);
    metric('syncact_rejected_messages_total', 'counter', 'Client messages refused, by error code.', labelled('syncact_rejected_messages_total', 'code', this.rejected));
    metric('syncact_refused_upgrades_total', 'counter', 'WebSocket handshakes refused, by reason.', labelled('syncact_refused_upgrades_total', 'reason', this.refusedUpgrades));
    metric('syncact_session_faults_total', 'counter', 'Pipeline faults reported to clients.', [`syncact_session_faults_total ${this.faults}`]);
    return out.join('\n') + '\n';
  }
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function num(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}
