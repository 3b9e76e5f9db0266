import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';

describe('loadConfig', () => {
  it('when nothing is set then the documented defaults apply', () => {
    const config = loadConfig({});

    expect(config).toMatchObject({
      PORT: 4000,
      DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/personalization',
      REDIS_URL: 'redis://127.0.0.1:6379',
      DEMO_DATA: true,
    });
  });

  it('when values are wrong then one error lists every bad key with the reason', () => {
    const load = () => loadConfig({ PORT: 'eighty', REDIS_URL: 'http://example.test', DEMO_DATA: 'maybe' });

    expect(load).toThrow(/Invalid configuration/);
    expect(load).toThrow(/PORT/);
    expect(load).toThrow(/REDIS_URL/);
    expect(load).toThrow(/DEMO_DATA/);
  });
});
