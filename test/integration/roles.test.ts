import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/gateway.ts';
import { type LogLine, postGraphql, type RoleProcess, startRole } from '../helpers/processes.ts';
import { createTestConfig, uniqueId } from '../helpers/test-env.ts';

const RETRAIN = `mutation($wait: Int!) { retrainModel(wait: true, waitSeconds: $wait, params: { factors: 4, lambda: 10 }) {
  jobId status version { id current } } }`;
const JOB = `query($jobId: ID!) { trainingJob(jobId: $jobId) { status version { id current } } }`;

interface Retrained {
  retrainModel: { jobId: string; status: string; version: { id: number; current: boolean } | null };
}

const listening = (line: LogLine) => line.msg === 'gateway listening';
const urlOf = (line: LogLine) => String(line.graphiql).replace('/graphql', '');

/** A few shoppers buying a few items each: enough for a model. */
async function seed(url: string) {
  const items = Array.from({ length: 6 }, (_, i) => uniqueId(`item${i}`));
  await postGraphql(url, `mutation($items: [ItemInput!]!) { upsertItems(items: $items) { upserted } }`, {
    items: items.map((id) => ({ id, name: id })),
  });
  const inputs = Array.from({ length: 12 }, (_, s) => uniqueId(`shopper${s}`)).flatMap((userId, s) =>
    [0, 1, 2].map((offset) => ({ userId, type: 'PURCHASE', itemId: items[(s + offset) % items.length] })),
  );
  await postGraphql(url, `mutation($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { status } }`, { inputs });
}

describe('roles as processes', () => {
  const running: RoleProcess[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((role) => role.stop()));
  });

  it('when the gateway runs with its default role then a trainer child process trains, not the gateway', async () => {
    const config = await createTestConfig();
    const gateway = startRole('server.ts', config, { PORT: '0' });
    running.push(gateway);
    const url = urlOf(await gateway.waitFor(listening));
    await gateway.waitFor((line) => line.msg === 'trainer running');
    await seed(url);

    const retrained = await postGraphql<Retrained>(url, RETRAIN, { wait: 120 });
    const trainedBy = await gateway.waitFor((line) => String(line.msg).startsWith('trained a model version'));
    const code = await gateway.stop();

    expect(retrained.data?.retrainModel).toMatchObject({ status: 'TRAINED', version: { current: true } });
    expect(trainedBy.name).toBe('trainer');
    expect(trainedBy.pid).not.toBe(gateway.child.pid);
    expect(code).toBe(0);
  });

  it('when a gateway and a feature worker run without a trainer then a training waits queued until a trainer starts', async () => {
    const config = await createTestConfig();
    const gateway = startRole('server.ts', config, { PORT: '0' }, ['--role=gateway']);
    const worker = startRole('worker.ts', config);
    running.push(gateway, worker);
    const url = urlOf(await gateway.waitFor(listening));
    await worker.waitFor((line) => line.msg === 'worker running');
    await seed(url);

    const queued = await postGraphql<Retrained>(url, RETRAIN, { wait: 2 });
    const trainer = startRole('trainer.ts', config);
    running.push(trainer);
    const jobId = queued.data?.retrainModel.jobId ?? '';
    const done = await eventually(async () => {
      const body = await postGraphql<{ trainingJob: { status: string; version: { current: boolean } } }>(url, JOB, {
        jobId,
      });
      // TRAINED, and announced to this gateway, which then serves it.
      return body.data?.trainingJob.version?.current ? body : undefined;
    }, 60_000);

    expect(queued.data?.retrainModel.status).toBe('QUEUED');
    expect(worker.lines.some((line) => String(line.msg).startsWith('trained'))).toBe(false);
    expect(trainer.lines.some((line) => String(line.msg).startsWith('trained a model version'))).toBe(true);
    expect(done.data?.trainingJob).toMatchObject({ status: 'TRAINED', version: { current: true } });
    // The trainer yields the CPU to serving: every thread's nice value (field 19 of its stat) is TRAINER_NICE.
    const threads = readdirSync(`/proc/${trainer.child.pid}/task`).map((tid) => {
      const stat = readFileSync(`/proc/${trainer.child.pid}/task/${tid}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
    });
    expect(threads.length).toBeGreaterThan(1);
    expect(new Set(threads)).toEqual(new Set([19]));
  });

  it('when the database is empty then the gateway listens at once and /ready says the demo data is loading', async () => {
    const config = await createTestConfig({ DEMO_DATA: 'true' });
    const gateway = startRole('server.ts', config, { PORT: '0' }, ['--role=gateway']);
    running.push(gateway);

    const url = urlOf(await gateway.waitFor(listening));
    const [health, ready] = await Promise.all([fetch(`${url}/health`), fetch(`${url}/ready`)]);
    const loaded = gateway.lines.some((line) => line.msg?.startsWith('loading demo purchases: done'));

    expect(health.status).toBe(200);
    // The full demo slice takes seconds to load; the gateway answered before it was in.
    expect(loaded).toBe(false);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'warming', warming: { demoData: 'loading' } });
  });

  it('when Redis does not answer as a feature worker starts then it waits, says so once, and starts when Redis is up', async () => {
    const port = await freePort();
    const config = await createTestConfig({ REDIS_URL: `redis://127.0.0.1:${port}` });
    const worker = startRole('worker.ts', config);
    running.push(worker);
    await worker.waitFor((line) => String(line.msg).startsWith('Redis does not answer'));

    const redis = spawn(
      'redis-server',
      ['--port', String(port), '--save', '', '--dir', mkdtempSync(join(tmpdir(), 'pgw-redis-'))],
      {
        stdio: 'ignore',
      },
    );
    try {
      await worker.waitFor((line) => line.msg === 'worker running', 30_000);

      expect(worker.child.exitCode).toBeNull();
      expect(worker.lines.filter((line) => String(line.msg).startsWith('Redis does not answer'))).toHaveLength(1);
    } finally {
      await worker.stop();
      redis.kill();
    }
  });
});

/** A port nothing listens on (now). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}
