import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfigOrExit } from '../../src/process.ts';

describe('loadConfigOrExit', () => {
  it('when a .env file exists then its settings apply, and a variable already in the environment wins', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'pgw-env-')), '.env');
    writeFileSync(file, 'HNSW_EF=123\nMODEL_PIN_MARGIN=0.25\n');
    process.env.MODEL_PIN_MARGIN = '0.5';

    const config = loadConfigOrExit(file);

    expect(config.HNSW_EF).toBe(123);
    expect(config.MODEL_PIN_MARGIN).toBe(0.5);
  });
});
