import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEventHub } from '../../core/event-hub.js';
import type { RunningJob } from '../../jobs/job-runner.js';
import { finalRunUpdate } from '../../jobs/run-progress.js';
import type { MenagerieEvents } from '../../schema/context.js';
import { runProgressStream } from '../../schema/run-progress-stream.js';
import { memoryTrackingStore } from '../helpers/tracking.js';

// A run the database says has ended while its process is still exiting (its job still holds
// a slot): a subscriber told "finished" then would start the next job into JOB_LIMIT. The
// stream waits for the job runner's own final update, which it sends once the slot is free.
describe('runProgress of a run whose process is still exiting', () => {
  let tracking: Awaited<ReturnType<typeof memoryTrackingStore>>;
  let runId: string;
  beforeAll(async () => {
    tracking = await memoryTrackingStore();
    const experiment = await tracking.store.createExperiment('streams');
    runId = (await tracking.store.createRun({ experimentId: experiment.id })).id;
    await tracking.store.endRun(runId, 'FINISHED');
  });
  afterAll(() => tracking.dispose());

  const final = (id: string) => finalRunUpdate(id, 'FINISHED', null);

  async function stream(running: RunningJob[]) {
    const events = createEventHub<MenagerieEvents>();
    const updates = await runProgressStream(
      {
        events,
        tracking: tracking.store,
        database: tracking.database,
        jobs: { running: () => running } as never,
      },
      runId,
    );
    return { events, updates };
  }

  it('is not final while the job holds its slot, and ends with the runner’s final update', async () => {
    const { events, updates } = await stream([{ id: runId, kind: 'training', pid: 1 }]);
    const first = await updates.next();
    expect(first.value).toMatchObject({ status: 'FINISHED', final: false });
    events.publish('runProgress', final(runId));
    expect((await updates.next()).value).toEqual(final(runId));
    expect((await updates.next()).done).toBe(true);
  });

  it('is final at once when no job holds it', async () => {
    const { updates } = await stream([]);
    expect((await updates.next()).value).toMatchObject({ status: 'FINISHED', final: true });
    expect((await updates.next()).done).toBe(true);
  });
});
