import type { Job } from 'bullmq';
import type { Db } from '../../db/client.ts';
import type { Logger } from '../../logger.ts';
import { Progress } from '../../progress.ts';
import { rebuildFeatures } from '../../services/feature-rebuild.ts';
import type { FeatureStore } from '../../services/features.ts';
import type { ItemAdmission } from '../../services/item-admission.ts';
import type { ReplayStatus } from '../../services/replay-status.ts';
import type { EventsQueue, ReplayJob } from '../queues.ts';

/** How long the replay waits for event jobs already running when it pauses the queue. */
const DRAIN_TIMEOUT_MS = 30_000;
/** The pause of live applies lapses this long after the replay stops renewing it (it died). */
const LIVE_PAUSE_TTL_MS = 30_000;

/**
 * Replays the whole event log into Redis at full speed (pages of the log, one pipelined script call per
 * page), reporting progress in the log and to every gateway's `/ready`. The events queue is paused for
 * every worker meanwhile: clearing the features while another job writes them could keep an event's
 * applied mark and lose its effect. New events wait in the queue (their rows are in the log, so the replay
 * applies them and their jobs then skip them) and flow again when it ends. Returns the events read.
 */
export function makeReplayProcessor(deps: {
  db: Db;
  features: FeatureStore;
  admission: ItemAdmission;
  events: EventsQueue;
  status: ReplayStatus;
  logger: Logger;
}) {
  return async (job: Job<ReplayJob>): Promise<number> => {
    const report = (line: Parameters<ReplayStatus['report']>[0]) =>
      deps.status.report(line).catch((error) => deps.logger.warn({ err: error }, 'reporting replay progress failed'));
    const progress = new Progress(deps.logger, 'replaying the event log into Redis', { onReport: report });
    deps.logger.info({ reason: job.data.reason }, 'replaying the event log into Redis');
    await report(progress.report());
    // The live path (see live-events.ts) has no queue to pause: its applies are refused in their script.
    const renewPause = () =>
      deps.features
        .pauseLiveApplies(LIVE_PAUSE_TTL_MS)
        .catch((error) => deps.logger.warn({ err: error }, 'renewing the pause of live applies failed'));
    await deps.features.pauseLiveApplies(LIVE_PAUSE_TTL_MS);
    const renewing = setInterval(renewPause, LIVE_PAUSE_TTL_MS / 3);
    await deps.events.pause();
    try {
      const until = Date.now() + DRAIN_TIMEOUT_MS;
      while ((await deps.events.getActiveCount()) > 0 && Date.now() < until) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const events = await rebuildFeatures(deps.db, deps.features, deps.admission, { progress });
      progress.finish({ events });
      return events;
    } finally {
      clearInterval(renewing);
      await deps.features.resumeLiveApplies().catch(() => undefined);
      await deps.events.resume();
      await deps.status.clear().catch(() => undefined);
    }
  };
}
