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
    const load = () =>
      loadConfig({
        PORT: 'eighty',
        REDIS_URL: 'http://example.test',
        DEMO_DATA: 'maybe',
        EVENT_WEIGHTS: '{"VIEW":-1}',
      });

    expect(load).toThrow(/Invalid configuration/);
    expect(load).toThrow(/PORT/);
    expect(load).toThrow(/REDIS_URL/);
    expect(load).toThrow(/DEMO_DATA/);
    expect(load).toThrow(/EVENT_WEIGHTS/);
  });

  it('when event weights are given as JSON then they replace the defaults', () => {
    const config = loadConfig({
      EVENT_WEIGHTS: '{"VIEW":0.5,"CLICK":1,"ADD_TO_CART":3,"REMOVE_FROM_CART":0,"PURCHASE":10}',
    });

    expect(config.EVENT_WEIGHTS).toEqual({ VIEW: 0.5, CLICK: 1, ADD_TO_CART: 3, REMOVE_FROM_CART: 0, PURCHASE: 10 });
  });
});
