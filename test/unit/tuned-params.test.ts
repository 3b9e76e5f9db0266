import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { readTunedParams } from '../../src/services/training.ts';

describe('readTunedParams', () => {
  it('when the default file is read then training gets the tuned ALS parameters and half-life', async () => {
    const tuned = await readTunedParams(loadConfig({}).TRAIN_PARAMS_FILE);

    expect(tuned.params).toMatchObject({
      factors: expect.any(Number),
      lambda: expect.any(Number),
      alpha: expect.any(Number),
    });
    expect(tuned.params).not.toHaveProperty('halfLifeDays');
    expect(tuned.halfLifeDays).toEqual(expect.any(Number));
  });

  it('when the file has no ALS parameters then the error names the file', async () => {
    const path = join(await mkdtemp(join(tmpdir(), 'tuned-')), 'empty.json');
    await writeFile(path, '{"itemknn": {}}');

    await expect(readTunedParams(path)).rejects.toThrow(`TRAIN_PARAMS_FILE ${path} has no als.params`);
  });
});
