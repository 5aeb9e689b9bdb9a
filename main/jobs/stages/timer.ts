/** Wall time per stage, keyed in the order the stages first ran: the report's `seconds`. */
export class StageTimer {
  readonly seconds: Record<string, number> = {};
  private t0 = performance.now();

  /** Charges the time since the last lap to `stage`. */
  lap(stage: string): void {
    const now = performance.now();
    this.seconds[stage] = (this.seconds[stage] ?? 0) + (now - this.t0) / 1000;
    this.t0 = now;
  }

  /** Moves `seconds` spent inside stage `from` to a stage of their own (training inside the layer loop). */
  split(from: string, to: string, seconds: number): void {
    this.seconds[from] -= seconds;
    this.seconds[to] = seconds;
  }
}
