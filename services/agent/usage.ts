/**
 * When the agent was last used, by its proxy or by the worker's probes: a call in flight counts as
 * use until it ends, so a long build never looks unused. A local agent outlives the control plane
 * that started it (npm start stopped, say); with nobody calling, main.ts stops it after a while.
 */
export class AgentUsage {
  private active = 0;
  private lastUsedAt = Date.now();

  /** A call began; the function returned ends it (once, however often it is called). */
  begin(): () => void {
    this.active++;
    this.lastUsedAt = Date.now();
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.active--;
      this.lastUsedAt = Date.now();
    };
  }

  /** How long nobody has used the agent; 0 while a call is in flight. */
  unusedForMs(now = Date.now()): number {
    return this.active > 0 ? 0 : now - this.lastUsedAt;
  }
}
