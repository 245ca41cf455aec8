/**
 * intercept's stop sequence as a pure decision: on the first SIGTERM/SIGINT it drains (stops
 * accepting tcpcopy peers, keeps dropping and forwarding replies for `--drain-seconds`, so the
 * target's answers to sessions tcpcopy is resetting never reach real clients), then stops and
 * removes its rules; a second signal during the drain stops at once.
 */

/** Where the process is in its life. */
export type LifecyclePhase = "running" | "draining" | "stopping";

/** What a stop request (signal) does. */
export type StopAction = "drain" | "stop" | "none";

/** The next phase and the action for a stop request in `phase`. */
export function onStopRequest(
  phase: LifecyclePhase,
  drainSeconds: number,
): { next: LifecyclePhase; action: StopAction } {
  switch (phase) {
    case "running":
      return drainSeconds > 0
        ? { next: "draining", action: "drain" }
        : { next: "stopping", action: "stop" };
    case "draining":
      return { next: "stopping", action: "stop" };
    case "stopping":
      return { next: "stopping", action: "none" };
    default: {
      const never: never = phase;
      throw new Error(`unknown phase ${never}`);
    }
  }
}
