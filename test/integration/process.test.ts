import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { eventually } from '../helpers/gateway.ts';
import { sample } from '../helpers/prometheus.ts';
import { createTestConfig } from '../helpers/test-env.ts';

/** A port nobody listens on right now (the worker needs a fixed one: 0 turns its metrics off). */
async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe('the gateway process', () => {
  it('when started it serves, and when sent SIGTERM it closes its connections and exits 0', async () => {
    const config = await createTestConfig();
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      env: {
        ...process.env,
        ...Object.fromEntries(
          Object.entries(config).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)]),
        ),
        PORT: '0',
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = once(child, 'exit');
    let url: string | undefined;
    for await (const line of createInterface({ input: child.stdout })) {
      const entry = JSON.parse(line) as { msg?: string; graphiql?: string };
      if (entry.msg === 'gateway listening') {
        url = entry.graphiql;
        break;
      }
    }
    const ready = await fetch(url!.replace('/graphql', '/ready'));

    child.kill('SIGTERM');
    const deadline = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error('no exit within 15 s')), 15_000),
    );
    const [code] = (await Promise.race([exited, deadline])) as [number | null];

    expect(ready.status).toBe(200);
    expect(code).toBe(0);
  });
});

describe('the worker process', () => {
  it('when started then it serves its metrics on WORKER_METRICS_PORT until SIGTERM', async () => {
    const config = await createTestConfig();
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/worker.ts'], {
      env: {
        ...process.env,
        ...Object.fromEntries(
          Object.entries(config).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)]),
        ),
        WORKER_METRICS_PORT: String(port),
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const exited = once(child, 'exit');

    const text = await eventually(
      () =>
        fetch(`http://127.0.0.1:${port}/metrics`).then(
          (response) => response.text(),
          () => undefined,
        ),
      20_000,
    );
    child.kill('SIGTERM');
    const deadline = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error('no exit within 15 s')), 15_000),
    );
    const [code] = (await Promise.race([exited, deadline])) as [number | null];

    expect(sample(text, 'pgw_queue_waiting_jobs', { queue: 'events' })).toBeGreaterThanOrEqual(0);
    expect(text).toContain('# TYPE pgw_dependency_errors_total counter');
    expect(code).toBe(0);
  });
});

describe('npm run import:retail', () => {
  it('when the Online Retail II file is missing then it says where the data comes from and exits 2', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli/import-retail.ts', '--out', '/tmp/pgw-never.csv', '--in', '/nonexistent.csv.gz'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });

    const [code] = (await once(child, 'exit')) as [number | null];

    expect(code).toBe(2);
    expect(stderr).toContain('No Online Retail II file at /nonexistent.csv.gz');
    expect(stderr).toContain('UCI Machine Learning Repository');
  });
});
