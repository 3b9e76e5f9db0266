import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { readPinnedParams } from '../../src/services/training.ts';

async function fileWith(text: string): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'pinned-')), 'params.json');
  await writeFile(path, text);
  return path;
}

describe('readPinnedParams', () => {
  it('when nothing is configured then no parameter file is read: every family is tuned', () => {
    expect(loadConfig({}).TRAIN_PARAMS_FILE).toBe('');
  });

  it('when the file is a tune output then each listed family is pinned to its params', async () => {
    const path = await fileWith(
      JSON.stringify({
        chosen: 'ease',
        ease: { params: { lambda: 250 } },
        als: { factors: 16 },
        other: { params: {} },
      }),
    );

    const pinned = await readPinnedParams(path);

    expect(pinned).toEqual({ ease: { lambda: 250 }, als: { factors: 16 } });
  });

  it('when the file pins no family then the error names the file', async () => {
    const path = await fileWith('{"cooccurrence": {}}');

    await expect(readPinnedParams(path)).rejects.toThrow(`TRAIN_PARAMS_FILE ${path} pins no family`);
  });
});
