import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { createTestConfig } from '../helpers/test-env.ts';

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
